"""Lesson 01: prompting measured against a short LoRA fine-tune, and the decision framework's plan."""

from coursekit.evaluate import ANSWER_TOKENS, TIMING_NOISE  # new tokens per answer; timings read as equal


def check(results: dict) -> None:
    few = results["fewshot_task_metric"]
    fits = results["fewshot_fits_context"]
    KS = tuple(str(k) for k in results["ks"])  # JSON turns the k keys into strings
    assert tuple(sorted(few, key=int)) == KS, few
    if results["model"] != "tiny":
        return check_real_model(results, few, KS)
    assert KS == ("0", "1", "2", "4", "8") and not results["chat_template"] and not results["system_rules"]
    tokens = [results["fewshot_prompt_tokens"][k] for k in KS]
    context = results["context_tokens"]

    # a k is skipped only when its prompts really do not fit the model's context, and then nothing is invented
    for k, t in zip(KS, tokens):
        if fits[k]:
            assert 0.0 <= few[k] <= 1.0 and results["fewshot_latency_seconds"][k] > 0, (k, few[k])
        else:
            assert few[k] is None and results["fewshot_latency_seconds"][k] is None, k
            assert t + ANSWER_TOKENS > context * 0.9, (k, t, context)  # the mean is near or over the limit
    assert fits["0"] and fits["1"] and fits["2"]

    # the fine-tune beats prompting the base model with no examples, and every prompting strategy
    measured = [v for v in few.values() if v is not None]
    if results["retrieval_task_metric"] is not None:
        measured.append(results["retrieval_task_metric"])
    assert results["best_prompting_task_metric"] == max(measured)
    # measured at the CPU defaults: 1.00 after 100 LoRA steps (x 8, lr 5e-3), 0.0 for every prompt
    assert results["finetuned_task_metric"] >= few["0"] + 0.5, (results["finetuned_task_metric"], few)
    assert results["finetuned_task_metric"] >= results["best_prompting_task_metric"] + 0.4, results
    assert results["finetuned_fields"]["json_valid"] > results["zero_shot_fields"]["json_valid"], results
    assert results["finetuned_task_metric"] > results["best_prompting_task_metric"], results

    # prompt length grows with every example added; the fine-tuned model reads the zero-shot prompt
    assert all(a < b for a, b in zip(tokens, tokens[1:])), tokens
    assert results["finetuned_prompt_tokens"] == tokens[0]
    assert tokens[-1] > 5 * tokens[0]
    k_max = str(results["fewshot_k_max_fitting"])
    assert fits[k_max] and results["token_ratio_fewshot_max"] == results["fewshot_prompt_tokens"][k_max] / tokens[0]
    assert results["token_ratio_retrieval"] > 3
    assert results["retrieval_prompt_tokens"] > tokens[2]  # 3 retrieved examples vs 2 random ones
    assert results["finetuned_latency_seconds"] > 0 and results["latency_ratio_fewshot_max"] > 0
    # with the answer length held equal, the longest fitting prompt costs more time per answer than zero-shot
    assert results["latency_ratio_same_answer_length"] > 1.0, results["latency_ratio_same_answer_length"]
    assert results["claim_token_ratio"] == 5.0 and 0 < results["retrieval_ms_per_query"] < 500

    # the course's planning scenario: 8B on one A100 80GB; full fine-tuning does not fit, LoRA does
    assert results["plan_approach"] == "fine-tune" and results["plan_method"] == "lora", results["plan_method"]
    assert results["plan_fits"] == {"full": False, "lora": True, "qlora": True}
    # against the A100 80GB's capacity as nvidia-smi reports it: 81,920 MiB = 80 GiB (85.9e9 bytes), not 80e9
    assert results["plan_memory_bytes"]["full"] > 80 * 2**30 > results["plan_memory_bytes"]["lora"]
    assert results["n_eval"] >= 24 and results["ft_steps"] > 0 and results["ft_method"] == "lora"


def check_real_model(results: dict, few: dict, ks: tuple) -> None:
    """An instruct model with its chat template: prompting gets the rules in the system message, and the lesson's
    conclusion is whatever the measurement says, within the sampling error of the tickets scored."""
    from coursekit.evaluate import rate_difference

    assert results["chat_template"] and results["system_rules"]
    assert results["n_eval"] >= 64, "the comparison on a real model scores at least 64 tickets"
    measured = [v for v in few.values() if v is not None]
    if results["retrieval_task_metric"] is not None:
        measured.append(results["retrieval_task_metric"])
    assert results["best_prompting_task_metric"] == max(measured)
    # the conclusion printed is the one the figures give
    verdict = rate_difference(results["finetuned_task_metric"], results["n_eval"],
                              results["best_prompting_task_metric"], results["n_eval"])
    assert results["finetune_vs_best_prompt"]["verdict"] == verdict["verdict"]
    # the fine-tune learned the format from the data, without the rules in its prompt (zero-shot with the rules
    # wrote no valid JSON line on the real model: measured 0.00 on 64 tickets)
    assert results["finetuned_fields"]["json_valid"] > results["zero_shot_fields"]["json_valid"], results
    # the rules make the prompts longer than the plain prompt the fine-tuned model reads
    assert results["finetuned_prompt_tokens"] < results["fewshot_prompt_tokens"]["0"]
    tokens = [results["fewshot_prompt_tokens"][k] for k in ks]
    assert all(a < b for a, b in zip(tokens, tokens[1:])), tokens
    # at equal answer length the rules' 300-odd extra prompt tokens are a small part of 64 generated ones on this
    # model (one run measured 0.998x on a 2-core CPU): the longer prompt is not measurably faster, within the timing noise
    # the lesson reads as equal
    assert results["latency_ratio_same_answer_length"] > 1 - TIMING_NOISE, results["latency_ratio_same_answer_length"]
    assert results["plan_method"] == "lora" and results["ft_steps"] > 0
