"""Lesson 06: every method on the same budget, and the quoted comparison table checked at real size."""

EXPECTED = {"full", "lora", "qlora", "dora", "ia3", "prefix", "prompt", "adapter"}
KEYS = {"method", "trainable_parameters", "peak_memory_bytes", "train_seconds", "task_metric", "general_retention",
        "checkpoint_bytes", "latency_seconds_per_answer", "inference", "tokens_per_second"}
TINY_PARAMETERS = 3_475_712


def adapter_count(hidden, bottleneck, layers):
    return layers * 2 * (2 * hidden * bottleneck + bottleneck + hidden)


def check(results: dict) -> None:
    rows = {r["method"]: r for r in results["methods"]}
    failed = results["methods_failed"]
    assert set(rows) | set(failed) == EXPECTED, (sorted(rows), failed)
    # only QLoRA may be unavailable (bitsandbytes 4-bit needs a supported device); everything else must run
    assert set(failed) <= {"qlora"}, failed
    for m, r in rows.items():
        assert KEYS <= set(r), (m, KEYS - set(r))
        assert 0.0 <= r["task_metric"] <= 1.0 and r["train_seconds"] > 0 and r["peak_memory_bytes"] > 0, r
        assert r["checkpoint_bytes"] > 0 and r["latency_seconds_per_answer"] > 0, r
        assert 0.0 <= r["general_retention"] <= 2.0, r

    # whether generate() applies a prefix-tuning prefix was measured, and read from the figures (the prefix row's
    # generated figures are qualified when it does not: tests/test_comparison.py, the strict xfail)
    gap = results["prefix_generation_gap"]
    assert gap["forward_vs_base"] > 1.0, gap  # the random prefix moves the forward pass
    assert gap["applied"] == (gap["generate_vs_forward"] <= 1e-3), gap

    full = rows["full"]
    assert full["trainable_parameters"] == full["total_parameters"]
    # the highest score, and the methods tied with it, are the ones the figures give
    best = max(rows.values(), key=lambda r: r["task_metric"])
    assert results["best_method"] in rows and rows[results["best_method"]]["task_metric"] == best["task_metric"]
    check_fact_table(results)
    check_recommender(results)
    if results.get("model", "tiny") != "tiny":
        return check_real_model(results, rows, failed)
    assert full["total_parameters"] == TINY_PARAMETERS
    for m in EXPECTED - {"full"} - set(failed):
        assert rows[m]["trainable_parameters"] < TINY_PARAMETERS / 5, (m, rows[m]["trainable_parameters"])
        assert rows[m]["checkpoint_bytes"] < full["checkpoint_bytes"] / 5, m  # adapter-only checkpoints
    # the Houlsby adapter (coursekit.scratch) has exactly the formula's parameters: 2 per layer, bottleneck 64
    assert rows["adapter"]["trainable_parameters"] == adapter_count(256, 64, 4)
    # LoRA rank 8 on every Linear of the 4 decoder layers
    assert rows["lora"]["trainable_parameters"] == 4 * 8 * ((256 + 256) * 2 + (256 + 128) * 2 + (256 + 704) * 3)
    assert rows["ia3"]["trainable_parameters"] < rows["lora"]["trainable_parameters"]
    assert {rows[m]["inference"] for m in ("lora", "dora", "ia3")} == {"merged"}
    assert {rows[m]["inference"] for m in ("prefix", "prompt", "adapter")} == {"unmerged"}

    # the same budget for everyone, and full fine-tuning and LoRA learned on it: validation loss well down
    assert results["steps_per_method"] > 0
    assert {r["steps"] for r in rows.values()} == {results["steps_per_method"]}, rows
    for m in ("full", "lora"):
        first, final = rows[m]["first_eval_loss"], rows[m]["final_eval_loss"]
        assert first is not None and final < 0.8 * first, (m, first, final)
    # every measured method is reported in exactly one of: scored, loss fell only, did not learn
    groups = [results["methods_scoring"], results["methods_loss_fell_only"], results["methods_not_learning"]]
    assert sorted(sum(groups, [])) == sorted(rows), groups
    assert all(rows[m]["task_metric"] > 0 for m in results["methods_scoring"])
    if results.get("model", "tiny") == "tiny" and results.get("device") == "cpu":
        # what this lesson shows: full fine-tuning and the LoRA family answer the task on the shared budget
        # (60 steps x 8, 64 tickets). "Answers" is at least half the tickets exactly right, lesson 03's bar for
        # "learned"; measured on 2 cores (make course): full 1.00, LoRA 0.67, QLoRA 0.86, DoRA 0.94, each at least
        # 2.7 standard errors (sqrt(0.5 x 0.5 / 64) = 0.0625) above the bar; with the other seeds tried (1 and 2)
        # LoRA 0.86 and 0.77, QLoRA 0.75 and 0.97, DoRA 0.98 and 0.80.
        floor = 0.5
        for m in ("full", "lora", "qlora", "dora"):
            if m in rows:
                assert rows[m]["task_metric"] >= floor, (m, rows[m]["task_metric"], floor)
                assert m in results["methods_scoring"], m
        assert {"prefix", "prompt"} & set(results["methods_scoring"]) == set(), results["methods_scoring"]
        # the late trend of every run is recorded, and it is what the lesson's diagnosis read
        assert set(results["late_loss_trend"]) == set(rows)
        for m, r in rows.items():  # each run's training-loss curve, logged up to its last step
            steps = [step for step, _ in r["train_loss"]]
            assert len(steps) >= 10 and steps == sorted(steps) and steps[-1] <= r["steps"], (m, steps)
        # LoRA keeps no less of the probe than full fine-tuning, beyond three standard errors of the difference of two
        # retentions on 120 questions (sqrt(2 x 0.8 x 0.2 / 120) / 0.83 = 0.062; measured at 60 steps 0.95 vs 0.78)
        assert rows["lora"]["general_retention"] >= rows["full"]["general_retention"] - 0.19



def check_real_model(results: dict, rows: dict, failed: list) -> None:
    """A real model on a CPU runs a few steps per method: every method runs on the same budget and is classified,
    the parameter-efficient ones train a small fraction of the model."""
    full = rows["full"]
    if results.get("device") == "cpu":  # bitsandbytes runs NF4 on a CPU: QLoRA trains on the real model too
        assert "qlora" in rows, failed
    for m in set(rows) - {"full"}:
        assert rows[m]["trainable_parameters"] < full["total_parameters"] / 20, m
        assert rows[m]["checkpoint_bytes"] < full["checkpoint_bytes"] / 5, m
    assert {r["steps"] for r in rows.values()} == {results["steps_per_method"]}, rows
    groups = [results["methods_scoring"], results["methods_loss_fell_only"], results["methods_not_learning"]]
    assert sorted(sum(groups, [])) == sorted(rows), groups
    # LoRA lowers the validation loss of the real model within the budget
    first, final = rows["lora"]["first_eval_loss"], rows["lora"]["final_eval_loss"]
    assert final < first, (first, final)


def check_fact_table(results: dict) -> None:
    # the fact check at real size (Llama-3.1-8B)
    real = results["real_size"]
    assert real["total_parameters"] == 8_030_261_248
    assert real["adapter"]["trainable_parameters"] == adapter_count(4096, 64, 32)
    assert real["prefix"]["trainable_parameters"] == 20 * 32 * 2 * 8 * 128
    assert real["full_bytes_per_parameter"] == 16.0
    assert real["lora_all_linear"]["checkpoint_bytes_bf16"] > 50e6  # the table's "under 50 MB" does not hold
    assert [c["method"] for c in results["claimed_table_fact_check"]] == ["full", "lora", "qlora", "adapter", "prefix"]


def check_recommender(results: dict) -> None:
    """The quoted recommend_peft_method: what its code returns for its printed examples (and a 7B model on 12 GB),
    and what recommend_method answers from the estimator for the same real architectures (no training involved)."""
    rows = results["claimed_recommender"]
    assert [r["its code returns"] for r in rows] == ["LoRA, rank 16", "QLoRA, rank 16", "LoRA, rank 8", "none"]
    assert rows[2]["prints"] == "Adapter Layers" != rows[2]["its code returns"]
    assert [r["recommend_method"] for r in rows] == ["lora", "qlora", "lora", "qlora"]
    assert [r["model"] for r in rows] == ["llama-3.1-8b", "llama-3.1-70b", "llama-2-7b", "llama-2-7b"]
