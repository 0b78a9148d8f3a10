"""Lesson 03 (full fine-tuning): the pipeline learns the task, the sweep, forgetting measured, remedies tried."""
from __future__ import annotations

import math


def check(results: dict) -> None:
    assert results["notebook"] == "03_full_fine_tuning"
    # the runs are recorded whole (coursekit.train.RunResult as a dict)
    gentle, aggressive = results["gentle"], results["aggressive"]
    early_stopping, mixed = results["early_stopping"], results["mixed"]
    for value in (results["task_metric_base"], results["general_probe_base"], gentle["task_metric_after"],
                  gentle["general_probe_after"], aggressive["general_probe_after"]):
        assert 0.0 <= value <= 1.0, value
    assert gentle["method"] == aggressive["method"] == "full"
    assert gentle["trainable_parameters"] == gentle["total_parameters"] > 0  # full fine-tuning trains every weight

    # the data: the response is learned, the prompt masked; per-batch padding wastes less than max_length=512
    assert 0 < results["prompt_tokens_masked"] < results["example_tokens"]
    assert 0 <= results["padding_share_dynamic"] < results["padding_share_max_length"] < 1

    # the loss covers the answer and the end token that teaches the model to stop
    assert results["learns_to_stop"] is True
    # the gentle run learned the task: validation loss fell
    assert gentle["eval_loss"][-1][1] < gentle["eval_loss"][0][1]
    assert gentle["tokens_per_second"] > 0 and gentle["peak_memory_bytes"] > 0
    assert gentle["general_probe_after"] / results["general_probe_base"] == results["general_probe_kept_gentle"]
    # the remedies' table is made of the recorded runs
    assert [row["steps"] for row in results["remedies"]] == [0, gentle["steps"], aggressive["steps"],
                                                              early_stopping["steps"], mixed["steps"]]
    assert early_stopping["steps"] <= aggressive["steps"]
    sweep = results["lr_sweep"]
    lrs = [row["learning_rate"] for row in sweep]
    assert len(sweep) >= (3 if results.get("model", "tiny") == "tiny" else 2) and lrs == sorted(lrs)
    assert all(math.isfinite(row["final_eval_loss"]) for row in sweep)
    remedies = {row["run"]: row for row in results["remedies"]}
    # the Hugging Face recipe written out on the page trains, and builds the same SFTConfig as finetune
    assert results["recipe_same_as_finetune"] is True and results["recipe_steps"] >= 1
    assert remedies["base model"]["general_probe_kept"] == 1.0
    if results.get("model", "tiny") != "tiny":
        # a real instruct model on a CPU runs a handful of steps per run: it uses its chat template, and the
        # learning-rate sweep's conclusion is drawn from its own figures; forgetting is shown at size on a GPU
        assert results["chat_template"] is True
        return
    assert gentle["task_metric_after"] > results["task_metric_base"]

    # forgetting: the aggressive run keeps less of the general probe than the gentle one, and general text
    # becomes harder to predict
    assert results["general_probe_kept_aggressive"] < results["general_probe_kept_gentle"]
    assert aggressive["perplexity_after"] > results["perplexity_base"]
    assert results["probe_items_lost_aggressive"] > 0

    # mixing general data in protects the general skills better than the aggressive recipe alone
    assert results["general_probe_kept_mixed"] > results["general_probe_kept_aggressive"]

    if results.get("model", "tiny") == "tiny" and results.get("size", "cpu") == "cpu":
        # the embedded model at CPU defaults, as measured on 2 cores: base 0.00; the gentle run (2 epochs over 480,
        # 120 steps x 8) 1.00 on 64 tickets keeping 96% of the 120-question probe; the aggressive run (1 epoch at 3x
        # the rate) 0.97 keeping 47%; the sweep (2 epochs each) 0.00 at 1e-5, 1.00 keeping 96% at 1e-3, 0.97 keeping
        # 9% at 3e-3. The
        # gentle run must reach the 0.90 the lesson is built for, less the sampling error of 64 tickets at that rate
        # (sqrt(0.9 x 0.1 / 64) = 0.04); the probe bounds sit three standard errors (about 0.045) from the measured
        # figures. So the check does not fail by chance on another CPU, and still fails when the effects are gone.
        assert results["task_metric_base"] <= 0.10
        assert gentle["task_metric_after"] >= 0.86
        assert results["general_probe_kept_gentle"] >= 0.80
        assert results["general_probe_kept_aggressive"] <= 0.60
        # the learning-rate sweep spans the three regimes the lesson names, each verdict drawn from its figures
        verdicts = [row["verdict"] for row in sweep]
        assert verdicts[0] == "did not learn the task" and verdicts[-1] == "learned and forgot", verdicts
        assert "learned and kept" in verdicts, verdicts

    # why full fine-tuning keeps fp32 master weights: at the popular 2e-5, one Adam-sized step leaves most bf16 weight
    # entries unchanged, and no fp32 entry
    assert results["bf16_update_lost_fraction"]["2e-05"] > 0.5
    assert results["fp32_update_lost_fraction"]["2e-05"] == 0.0
