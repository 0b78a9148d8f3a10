"""Exact counts on the meta device, checked against published figures and against peft itself."""
import pytest

from coursekit.archs import count_lora_parameters, count_parameters, parameters_by_kind, resolve_arch

EXPECTED = {  # sum(p.numel()) of the published checkpoints
    "llama-2-7b": 6_738_415_616, "llama-2-13b": 13_015_864_320, "llama-3.1-8b": 8_030_261_248,
    "llama-3.1-70b": 70_553_706_496, "llama-3.2-1b": 1_235_814_400, "llama-3.2-3b": 3_212_749_824,
    "mistral-7b": 7_241_732_096, "qwen2.5-7b": 7_615_616_512, "smollm2-135m": 134_515_008, "tiny": 3_475_712,
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_preset_counts(name):
    assert count_parameters(name) == EXPECTED[name]


def test_coursekit_exports_count_parameters():
    import coursekit

    assert coursekit.count_parameters("llama-3.1-8b") == 8_030_261_248


def test_lora_on_seven_projections_of_llama_31_8b():
    assert count_lora_parameters("llama-3.1-8b", 16, "all-linear") == 41_943_040
    names = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
    assert count_lora_parameters("llama-3.1-8b", 16, names) == 41_943_040


@pytest.mark.parametrize("arch,rank,targets", [
    ("llama-3.1-8b", 16, "all-linear"), ("llama-3.2-3b", 16, ["q_proj", "v_proj"]), ("qwen2.5-7b", 8, "all-linear"),
    ("tiny", 4, ["o_proj", "down_proj"]),
])
def test_lora_count_matches_peft_on_meta(arch, rank, targets):
    from peft import LoraConfig, get_peft_model

    from coursekit.archs import build_meta_model

    model = get_peft_model(build_meta_model(arch), LoraConfig(r=rank, target_modules=targets, task_type="CAUSAL_LM"))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert count_lora_parameters(arch, rank, targets) == trainable


def test_config_json_path_and_dict(tmp_path):
    import json

    fields = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100, "tie_word_embeddings": False}
    (tmp_path / "config.json").write_text(json.dumps(fields))
    # embed + head 2*100*64, per layer q,o 64*64, k,v 64*32, mlp 3*64*128, 2 norms, final norm
    expected = 2 * 100 * 64 + 2 * (2 * 64 * 64 + 2 * 64 * 32 + 3 * 64 * 128 + 2 * 64) + 64
    assert count_parameters(tmp_path) == expected
    assert count_parameters(str(tmp_path / "config.json")) == expected
    assert count_parameters(fields) == expected


def test_per_kind_sums_to_total():
    kinds = parameters_by_kind("llama-3.1-8b")
    assert sum(kinds.values()) == 8_030_261_248
    assert kinds["lm_head"] == kinds["embed_tokens"] == 128256 * 4096
    assert "lm_head" not in parameters_by_kind("llama-3.2-1b")  # tied: counted once, as the embedding


@pytest.mark.parametrize("call,match", [
    (lambda: count_parameters("gpt-9"), "unknown architecture"),
    (lambda: count_parameters(""), "architecture"),
    (lambda: count_lora_parameters("tiny", 0, "all-linear"), "positive integer"),
    (lambda: count_lora_parameters("tiny", -4, "all-linear"), "positive integer"),
    (lambda: count_lora_parameters("tiny", 300, "all-linear"), "larger than"),
    (lambda: count_lora_parameters("tiny", 8, ["query"]), "q_proj"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_spec_shapes():
    s = resolve_arch("llama-3.2-3b")
    assert (s.hidden_size, s.head_dim, s.num_key_value_heads, s.tie_word_embeddings) == (3072, 128, 8, True)
