"""Lesson 01: prompting measured against a short LoRA fine-tune, and the decision framework's plan."""

KS = ("0", "1", "2", "4", "8")  # JSON turns the k keys into strings


def check(results: dict) -> None:
    few = results["fewshot_task_metric"]
    assert tuple(sorted(few, key=int)) == KS, few
    metrics = [*few.values(), results["retrieval_task_metric"], results["finetuned_task_metric"]]
    assert all(0.0 <= m <= 1.0 for m in metrics), metrics

    # the fine-tune beats prompting the base model with no examples, and by a clear margin
    assert results["finetuned_task_metric"] >= few["0"] + 0.2, (results["finetuned_task_metric"], few)
    assert results["finetuned_task_metric"] > results["best_prompting_task_metric"], results

    # prompt length grows with every example added; the fine-tuned model reads the zero-shot prompt
    tokens = [results["fewshot_prompt_tokens"][k] for k in KS]
    assert all(a < b for a, b in zip(tokens, tokens[1:])), tokens
    assert results["finetuned_prompt_tokens"] == tokens[0]
    assert tokens[-1] > 5 * tokens[0]
    assert results["token_ratio_fewshot8"] == tokens[-1] / tokens[0]
    assert results["token_ratio_retrieval"] > 3
    assert results["retrieval_prompt_tokens"] > tokens[2]  # 4 retrieved examples vs 2 random ones

    # latency: measured, positive, and the 8-shot prompt is not faster than the short one
    lat = results["fewshot_latency_seconds"]
    assert all(v > 0 for v in lat.values()) and results["finetuned_latency_seconds"] > 0
    assert results["latency_ratio_fewshot8"] > 0

    # the course's planning scenario: 8B on one A100 80GB; full fine-tuning does not fit, LoRA does
    assert results["plan_approach"] == "fine-tune" and results["plan_method"] == "lora", results["plan_method"]
    assert results["plan_fits"] == {"full": False, "lora": True, "qlora": True}
    assert results["plan_memory_bytes"]["full"] > 80e9 > results["plan_memory_bytes"]["lora"]
    assert results["n_eval"] >= 32 and results["lora_steps"] > 0
