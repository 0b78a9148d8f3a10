"""coursekit.scratch.merge: a 4-bit base cannot take a LoRA update as it is; dequantize-then-merge keeps it."""
import pytest
import torch


@pytest.fixture(scope="module")
def qlora_model(random_tiny_folder):
    from peft import LoraConfig, get_peft_model
    from transformers import BitsAndBytesConfig, LlamaForCausalLM

    torch.manual_seed(0)
    folder = random_tiny_folder
    bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                             bnb_4bit_compute_dtype=torch.float32)
    base = LlamaForCausalLM.from_pretrained(folder, quantization_config=bnb, device_map="cpu")
    model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.002)  # a small, trained-looking update
    return model


def test_packed_weight_cannot_take_the_update(qlora_model):
    layer = qlora_model.base_model.model.model.layers[0].self_attn.q_proj
    weight = layer.get_base_layer().weight
    delta = layer.get_delta_weight("default")
    assert weight.dtype == torch.uint8 and weight.shape != delta.shape  # packed codes, not a matrix
    with pytest.raises(RuntimeError):
        weight.data + delta


def test_requantizing_loses_most_of_the_update(qlora_model):
    from coursekit.scratch.merge import four_bit_merge_report

    report = four_bit_merge_report(qlora_model)
    assert report.layers == 8
    assert report.delta_rms > 0
    assert report.relative_error > 0.5  # the rounding error is as large as the update itself
    assert report.delta_cosine < 0.5
    assert set(report.to_dict()) == {"layers", "delta_rms", "requantized_error_rms", "relative_error",
                                     "delta_cosine"}


def test_dequantize_then_merge_matches_the_unmerged_model(qlora_model):
    from coursekit.scratch.merge import dequantize_and_merge

    ids = torch.randint(0, 2048, (2, 12))
    qlora_model.train()  # the training path: dequantize, then matmul in float32 (no bf16 CPU inference kernel)
    with torch.no_grad():
        unmerged = qlora_model(ids).logits
    merged = dequantize_and_merge(qlora_model)
    assert not any("4bit" in type(m).__name__ or "Lora" in type(m).__name__ for m in merged.modules())
    assert merged.model.layers[0].mlp.up_proj.weight.dtype == torch.float32
    merged.eval()
    with torch.no_grad():
        out = merged(ids).logits
    torch.testing.assert_close(out, unmerged, rtol=0, atol=1e-4)


def test_merge_bad_input():
    from coursekit.scratch.merge import four_bit_merge_report

    with pytest.raises(ValueError, match="LoRA"):
        four_bit_merge_report(torch.nn.Linear(3, 3))


def test_merge_logit_gap_takes_the_unmerged_logits_before_the_merge(tiny_model, tiny_tokenizer):
    from coursekit.evaluate import merge_logit_gap

    texts = ["From: Maria\nWhere is order 4821?", "Hi"]
    same = merge_logit_gap(tiny_model, lambda m: m, tiny_tokenizer, texts)
    assert same.max_abs_diff == 0.0 and same.logit_scale > 1 and same.merged is tiny_model

    def nudge(m):  # a "merge" that changes the weights in place, as merge_and_unload does
        with torch.no_grad():
            m.model.layers[0].mlp.up_proj.weight.add_(0.05)
        return m

    moved = merge_logit_gap(tiny_model, nudge, tiny_tokenizer, texts)
    assert moved.max_abs_diff > 1e-3 and 0 < moved.relative < 1
    with pytest.raises(ValueError, match="at least one text"):
        merge_logit_gap(tiny_model, nudge, tiny_tokenizer, [])
