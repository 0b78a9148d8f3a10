"""Lesson 04 (LoRA): the from-scratch layer, peft counts, a trained adapter, the rank sweep, save / reload / merge."""
from __future__ import annotations

import math


def check(results: dict) -> None:
    assert results["notebook"] == "04_lora"
    assert results["scratch_starts_exact"] is True  # B = 0: the LoRA layer starts as the base layer
    assert results["scratch_merge_diff"] < 1e-5
    # "100x less memory": one 4096x4096 matrix at r=8 needs 16 bytes per weight fully trained, 2 frozen plus 16 per
    # adapter weight with LoRA (7.8x less); the whole llama-2-7b run at 1 x 2,048 tokens, 6.8x less
    assert results["lora_r8_matrix_parameters"] == 65_536
    assert results["matrix_training_bytes_full"] == 16 * 4096 * 4096 == 268_435_456
    assert results["matrix_training_bytes_lora_r8"] == 2 * 4096 * 4096 + 16 * 65_536 == 34_603_008
    assert results["full_7b_total_bytes"] == 108_351_520_768 and results["lora_7b_total_bytes"] == 16_010_190_848
    # the quoted LoRA script: r=16 on all seven projections of Llama-2-7b trains 39,976,960; its printed line is
    # r=8 on q_proj and v_proj (4,194,304) on top of the 6,738,415,616 of the base
    assert results["llama_2_7b_parameters"] == 6_738_415_616
    assert results["lora_script_7b_trainable"] == 39_976_960
    claimed_trainable, claimed_all = results["claimed_lora_script_7b"]
    assert results["lora_r8_qv_7b"] == claimed_trainable == 4_194_304
    assert results["llama_2_7b_parameters"] + claimed_trainable == claimed_all
    # fp16 weights with fp16=True: the GradScaler refuses fp16 gradients; peft's fp32 adapters pass; and
    # evaluation_strategy= is refused by the pinned transformers
    assert results["fp16_full_unscale"] == "ValueError: Attempting to unscale FP16 gradients."
    assert results["fp16_full_trainable_dtypes"] == ["float16"]
    assert results["fp16_lora_unscale"] == "no error" and results["fp16_lora_trainable_dtypes"] == ["float32"]
    assert results["evaluation_strategy_argument"].startswith("TypeError:")
    # the from-scratch injection and peft train the same number of parameters
    assert results["scratch_trainable"] == results["peft_trainable_qv"] > 0
    assert results["peft_trainable_all_linear"] > results["peft_trainable_qv"]
    if results.get("model", "tiny") == "tiny":
        assert results["peft_trainable_qv"] == 28_672  # 4 layers x 8 x ((256+256) + (256+128))

    # training helped on the task, and the validation loss fell (the runs are recorded whole: RunResult as a dict)
    lora, full = results["lora"], results["full"]
    assert lora["method"] == "lora" and full["method"] == "full"
    assert 0.0 <= lora["task_metric_after"] <= 1.0
    assert lora["eval_loss"][-1][1] < lora["eval_loss"][0][1]
    assert 0 < lora["trainable_parameters"] < full["trainable_parameters"] == full["total_parameters"]
    assert results["forgetting_lora"] == lora["general_probe_before"] - lora["general_probe_after"]
    assert results["forgetting_full"] == full["general_probe_before"] - full["general_probe_after"]
    # the adapter is small on disk, and merging changes nothing but rounding
    assert 0 < results["adapter_bytes"] < results["model_bytes"] / 2
    assert results["merged_max_abs_diff"] < 1e-3
    assert results["merged_has_lora"] is False
    # two adapters on one base: both load under their names, they give different outputs, and with the adapters
    # disabled the model gives the base model's outputs
    assert sorted(results["multi_adapter_names"]) == ["recipe", "support"]
    assert results["multi_adapter_outputs_differ"] is True
    assert results["disable_adapter_matches_base"] is True
    # the Hugging Face recipe written out on the page trains, and builds the same SFTConfig and LoraConfig as finetune
    assert results["recipe_same_as_finetune"] is True
    assert results["recipe_steps"] >= 1
    sweep = results["rank_sweep"]
    per_rank = {row["trainable_parameters"] / row["rank"] for row in sweep}
    assert len(per_rank) == 1  # trainable parameters are exactly proportional to the rank
    if results.get("model", "tiny") != "tiny":
        # a real model on a CPU: a few dozen steps; the rank sweep's and the forgetting comparison's conclusions
        # are drawn from their figures in the notebook, and the GPU run carries them at size
        assert len(sweep) >= 2
        return
    assert lora["task_metric_after"] > lora["task_metric_before"]

    if results.get("model", "tiny") == "tiny" and results.get("size", "cpu") == "cpu":
        # measured at the CPU defaults on 2 cores (100 steps x 8, 64 tickets): LoRA 1.00, full fine-tuning 1.00;
        # probe lost 0.025 vs 0.017 of 120 questions (a gap within chance: the lesson says so); rank sweep (60 steps)
        # r=1 0.86, r=4 0.94, r=16 1.00, r=64 0.27. LoRA must reach the 0.85 the lesson is built for, less the
        # sampling error of 64 tickets at that rate (sqrt(0.85 x 0.15 / 64) = 0.045).
        assert lora["task_metric_after"] >= 0.80, lora["task_metric_after"]
        assert lora["task_metric_after"] >= full["task_metric_after"] - 0.1
        # the rank sweep: four ranks at fixed alpha with rsLoRA, and at least one of them learned the task
        assert results["rank_sweep_alpha"] > 0 and results["rank_sweep_rslora"] is True
        assert len(results["rank_sweep"]) >= 4
        assert max(row["task_metric"] for row in results["rank_sweep"]) > 0

    # forgetting: LoRA loses no more general skill than full fine-tuning in the same budget, beyond three standard
    # errors of the difference of two probe scores on 120 questions (sqrt(2 x 0.8 x 0.2 / 120) = 0.052)
    assert math.isfinite(results["forgetting_full"]) and math.isfinite(results["forgetting_lora"])
    assert results["forgetting_lora"] <= results["forgetting_full"] + 0.155

    sweep = results["rank_sweep"]
    assert len(sweep) >= 3 and all(set(row) == {"rank", "trainable_parameters", "task_metric", "final_eval_loss"}
                                   for row in sweep)
    assert all(math.isfinite(row["final_eval_loss"]) for row in sweep)
    # a best rank only when some rank answered a ticket (otherwise it would be the tie-break's choice)
    answered = max(row["task_metric"] for row in sweep) > 0
    assert (results["rank_sweep_best_rank"] in [row["rank"] for row in sweep]) if answered else (
        results["rank_sweep_best_rank"] is None and results["rank_sweep_smallest_tied_with_best"] is None)
    ranks = [row["rank"] for row in sweep]
    assert ranks == sorted(ranks) and ranks[0] == 1 and ranks[-1] == 64
    assert all(0.0 <= row["task_metric"] <= 1.0 for row in sweep)
