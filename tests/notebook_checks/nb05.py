"""Lesson 05 (QLoRA): NF4 and double quantization from scratch, 8-bit optimizer state, QLoRA vs LoRA, merging."""
from __future__ import annotations


def check(results: dict) -> None:
    assert results["notebook"] == "05_qlora"
    gb = results["weights_gb_70b"]
    assert gb == {"fp32": 280.0, "fp16 / bf16": 140.0, "int8": 70.0, "int4": 35.0}

    # NF4 from scratch equals bitsandbytes, and beats int4 on the model's real weights
    assert results["nf4_table_matches"] is True
    assert results["nf4_bytes_match"] is True and results["nf4_restore_match"] is True
    assert results["rmse_nf4"] < results["rmse_int4"]
    assert results["rmse_nf4"] < results["rmse_fp4"]

    # double quantization: 8/64 + 32/(64*256) bits, 0.373 bits saved = 3.26 GB for 70B (the claim says ~0.16 / ~3 GB)
    assert results["double_quant_bits"] == 0.126953125
    assert abs(results["double_quant_saving_gb_70b"] - 3.264) < 1e-3
    assert abs(results["double_quant_saving_gb_7b"] - 0.3264) < 1e-4

    # the 4-bit saving ratio: 0.373 bits saved per weight is right; 16 / (4 + 0.127) = 3.88x per weight, and for the
    # whole llama-2-7b (embeddings and output layer in bf16) 3.49x: never the quoted 4x or 4.2x
    assert results["double_quant_saved_bits"] == 0.5 - 0.126953125 == 0.373046875
    stored = results["ratio_arch_weight_bytes"]
    assert stored == {"bf16": 2 * 6_738_415_616, "nf4": 4_167_587_840, "nf4 + double quantization": 3_865_608_064}
    assert 3.4 < stored["bf16"] / stored["nf4 + double quantization"] < 3.5

    # counting a 4-bit model: numel sees packed bytes (two weights each); exact counts for the quoted QLoRA scripts
    assert results["numel_sum_4bit_model"] == results["numel_sum_4bit_formula"] < results["parameters_4bit_model"]
    if results.get("model", "tiny") == "tiny":
        assert results["numel_sum_4bit_model"] == 2_001_152 and results["parameters_4bit_model"] == 3_475_712
    counts = results["qlora_script_counts"]
    assert counts["llama-3.1-8b"] == {"base": 8_030_261_248, "lora": 41_943_040, "numel_4bit": 4_540_600_320}
    assert counts["llama-2-13b"] == {"base": 13_015_864_320, "lora": 62_586_880, "numel_4bit": 6_671_979_520}
    assert counts["llama-2-7b"] == {"base": 6_738_415_616, "lora": 39_976_960, "numel_4bit": 3_500_412_928}

    # the 4-bit weight is used in the backward pass: the input gradient is grad @ dequantized weight, not the original
    assert results["backward_grad_vs_dequantized"] < 1e-4 < results["backward_grad_vs_original"]
    # peft creates the adapters in fp32; TRL's SFTTrainer casts a 4-bit model's trainable LoRA weights to bf16, and
    # finetune casts them back to fp32 for a run that does not compute in bf16 (a CPU)
    assert results["qlora_4bit_weights_trainable"] is False
    assert results["qlora_trainable_dtypes"] == (["bfloat16"] if results["qlora_bf16"] else ["float32"])

    # Adam state: 8 bytes per parameter in fp32, about 2 in 8-bit (plus blockwise absmax)
    assert results["adam_state_bytes_per_param"] == 8.0
    assert 2.0 <= results["adam8bit_state_bytes_per_param"] < 2.1

    # the QLoRA recipe written out on the page trains, and builds the same SFTConfig, LoraConfig and
    # BitsAndBytesConfig as finetune
    assert results["recipe_same_as_finetune"] is True and results["recipe_steps"] >= 1
    # the written-out recipe trains its adapters in the dtype finetune trained the QLoRA run's in
    dtypes = results["recipe_adapter_dtypes"]
    assert dtypes["recipe"] == dtypes["finetune"], dtypes

    # the goals of the lesson: the 4-bit weights as estimated within 2%, QLoRA within 0.05 of LoRA
    measured, estimated = results["qlora_weight_bytes_measured"], results["qlora_weight_bytes_estimated"]
    assert measured > 0 and abs(estimated / measured - 1) < 0.02
    # the two runs are recorded whole (coursekit.train.RunResult as a dict)
    runs = {"qlora": results["qlora"], "lora": results["lora"]}
    assert runs["qlora"]["method"] == "qlora" and runs["lora"]["method"] == "lora"
    assert runs["qlora"]["quantization_config"]["load_in_4bit"] and not runs["lora"]["quantization_config"]
    metric = {name: run["task_metric_after"] for name, run in runs.items()}
    first = {name: run["eval_loss"][0][1] for name, run in runs.items()}
    final = {name: run["eval_loss"][-1][1] for name, run in runs.items()}
    assert all(0.0 <= m <= 1.0 for m in metric.values())
    # both learn: the validation loss falls during training, with the 4-bit base as with the 16/32-bit one
    assert all(final[name] < first[name] for name in runs)
    # "QLoRA matches LoRA", judged by the sampling error of the tickets scored (three standard errors: a check
    # that fails by chance about once in 400 runs, and still fails when 4-bit storage really costs quality)
    from coursekit.evaluate import rate_difference

    n = results["n_metric"]
    assert rate_difference(metric["qlora"], n, metric["lora"], n, z=3.0)["verdict"] == "tie"
    assert results["qlora_lora_verdict"] == rate_difference(metric["qlora"], n, metric["lora"], n)["verdict"]
    if results.get("model", "tiny") == "tiny" and results.get("size", "cpu") == "cpu":
        # At the CPU defaults (100 steps x 8, lr 1e-2; measured on 2 cores LoRA 1.00 and QLoRA 1.00 on 64 tickets,
        # 18 s each of training) both answer the task: each at least the 0.80 the lesson is built for, less the
        # sampling error of 64 tickets at that rate (sqrt(0.8 x 0.2 / 64) = 0.05). The validation losses fall from
        # 1.45 to under a twentieth (measured 0.0029 and 0.0063) and end within 2% of the starting loss of each other,
        # which fails if 4-bit storage costs learning (a ratio of two losses this close to zero is noise).
        for name in runs:
            assert metric[name] >= 0.75, (name, metric)
            assert final[name] < 0.05 * first[name], (name, final, first)
        assert abs(final["qlora"] - final["lora"]) < 0.02 * first["lora"], (final, first)
    assert all(run["train_seconds"] > 0 and run["peak_memory_bytes"] > 0 for run in runs.values())
    # dequantizing every 4-bit weight twice per step is part of QLoRA's training time, never more than all of it
    steps = runs["qlora"]["steps"] * runs["qlora"]["grad_accum"]
    assert results["dequantize_train_seconds"] == 2 * steps * results["dequantize_all_seconds"] > 0
    assert results["dequantize_train_seconds"] < runs["qlora"]["train_seconds"]

    # re-quantizing after the merge loses part of the update; dequantize-then-merge keeps the model's outputs
    # (measured 0.31 of the update after 100 steps; 0.5 and more after 30: the larger the update, the less is lost)
    assert results["merge_relative_error_requantized"] > 0.1
    assert results["dequant_merge_relative_diff"] < 0.05

    # the quoted 7B budget: r=16 adapters counted exactly; the full / QLoRA ratio depends on the activations
    assert results["budget_7b_adapter_parameters"] == {"q_proj, v_proj": 8_388_608,
                                                       "all seven projections": 39_976_960}
    ratio = results["budget_7b_full_over_qlora"]
    assert ratio["checkpointing"] > ratio["no checkpointing"] > 1
    totals = results["budget_7b_total_bytes"]
    assert totals["checkpointing"]["full"] > 16 * 6_738_415_616  # 16 bytes per parameter before activations
