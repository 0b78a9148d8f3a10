import json

import pytest

from coursekit.models import EMBEDDED_MODEL_DIR, load_base_model, resolve_model_path

PROJECTIONS = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


@pytest.fixture
def tiny(tiny_model, tiny_tokenizer):
    """The embedded model and its tokenizer (copies of the session's: conftest.py)."""
    return tiny_model, tiny_tokenizer


def test_embedded_model_is_a_real_llama(tiny):
    from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

    model, tok = tiny
    assert isinstance(model, LlamaForCausalLM) and isinstance(tok, PreTrainedTokenizerFast)
    n = sum(p.numel() for p in model.parameters())
    assert 1_000_000 <= n <= 60_000_000
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    assert PROJECTIONS <= names
    cfg = model.config
    assert cfg.num_key_value_heads < cfg.num_attention_heads  # grouped-query attention
    assert type(model.model.norm).__name__ == "LlamaRMSNorm"
    assert (EMBEDDED_MODEL_DIR / "model.safetensors").stat().st_size < 25e6


def test_embedded_model_learned_its_corpus(tiny):
    from coursekit.data import general_texts
    from coursekit.evaluate import general_probe_score, perplexity

    model, tok = tiny
    info = json.loads((EMBEDDED_MODEL_DIR / "recipe.json").read_text())
    ppl = perplexity(model, tok, general_texts("heldout", 200))
    assert ppl < 10, ppl  # a uniform guess over the vocabulary would be 2048
    probe = general_probe_score(model, tok)
    assert probe == pytest.approx(info["general_probe"], abs=1e-9)
    assert probe >= 0.6


def test_saved_folder_round_trip(tiny, tmp_path):
    import torch

    model, tok = tiny
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    again, tok2 = load_base_model(str(tmp_path / "m"))
    ids = tok("The capital of France is", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.equal(model(ids).logits, again(ids).logits)
    assert tok2("order 4821")["input_ids"] == tok("order 4821")["input_ids"]


def test_load_in_4bit_from_a_local_folder(tiny, tmp_path):
    import bitsandbytes as bnb

    model, tok = tiny
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    q, _ = load_base_model(str(tmp_path / "m"), quantization="nf4")
    four_bit = [m for m in q.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(four_bit) == 7 * model.config.num_hidden_layers  # the decoder's projections; embeddings stay 16/32-bit
    assert four_bit[0].weight.quant_state.quant_type == "nf4"


def test_bad_names_get_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="tiny"):
        resolve_model_path("not a model")
    with pytest.raises(ValueError, match="config.json"):
        resolve_model_path(str(tmp_path))
    with pytest.raises(ValueError, match="non-empty"):
        resolve_model_path("")
    with pytest.raises(ValueError, match="quantization"):
        load_base_model("tiny", quantization="int3")


def test_offline_hub_id_names_the_embedded_default(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="MODEL = 'tiny'"):
        load_base_model("coursekit-test/no-such-model")


def test_recipe_reproduces_the_first_steps():
    from coursekit.models.build import Recipe, pretrain

    info = json.loads((EMBEDDED_MODEL_DIR / "recipe.json").read_text())
    recipe = Recipe(**info["recipe"])
    _, _, losses = pretrain(recipe, steps=len(info["first_losses"]), quiet=True)
    assert losses == pytest.approx(info["first_losses"], rel=1e-3)


def test_readme_quotes_the_recorded_figures():
    from pathlib import Path

    info = json.loads((EMBEDDED_MODEL_DIR / "recipe.json").read_text())
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert f"{info['parameters']:,} parameters" in readme
    assert f"| held-out perplexity (generated general text) | {info['heldout_perplexity']:.2f} |" in readme
    assert f"| general-skills probe (120 items, 10 kinds) | {info['general_probe']:.2f} |" in readme
    r = info["recipe"]
    assert f"{r['steps']:,} steps of {r['batch_size']} × {r['seq_len']}" in readme


def test_tokenizer_keeps_the_task_labels_whole(tiny):
    """Each intent label is one token inside the triage JSON (a label split into rare fragments is far harder for a
    low-rank update to learn: LoRA learned the fragments' first piece and stopped)."""
    from coursekit.data.support import INTENTS

    _, tok = tiny
    for intent in INTENTS:
        line = json.dumps({"intent": intent, "order": None, "priority": "high"})
        pieces = [tok.decode([i]) for i in tok(line, add_special_tokens=False)["input_ids"]]
        assert intent in pieces, (intent, pieces)


def test_readme_continuations_are_the_models(tiny):
    """The README's table of greedy continuations is what the shipped model writes."""
    import re
    from pathlib import Path

    from coursekit.evaluate import generate

    model, tok = tiny
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    rows = re.findall(r"^\| `([^`]+)` \| `([^`]+)` \|$", readme, flags=re.M)
    assert len(rows) >= 4, rows
    for prompt, continuation in rows:
        prompt, continuation = prompt.replace("\\n", "\n"), continuation.replace("\\n", "\n")
        out = generate(model, tok, [prompt], max_new_tokens=48)[0]
        assert out == continuation, (prompt, out)


def test_4bit_layers_keep_their_layout_through_an_evaluation_pass():
    """bitsandbytes repacks a 4-bit weight for fast CPU inference after an eval-mode pass, and the backward pass then
    reads the repacked bytes wrongly; the loader keeps the standard layout so QLoRA trains after an evaluation."""
    import torch
    from bitsandbytes.functional import dequantize_4bit

    model, tok = load_base_model("tiny", quantization="nf4", device="cpu")
    model.eval()
    with torch.no_grad():
        model(**tok("The capital of France is", return_tensors="pt"))
    layer = model.model.layers[0].mlp.down_proj
    assert not getattr(layer.weight.quant_state, "packing_format_for_cpu", False)
    model.train()
    x = torch.randn(2, 5, layer.in_features, requires_grad=True)
    layer(x).float().sum().backward()
    w = dequantize_4bit(layer.weight.data, layer.weight.quant_state).float()
    expected = torch.ones(2, 5, layer.out_features) @ w
    assert torch.allclose(x.grad.float(), expected, rtol=2e-2, atol=2e-2), (x.grad - expected).abs().max()


def test_dequantization_seconds_times_every_4bit_layer():
    """Lesson 05 compares this with QLoRA's extra training time: it counts each 4-bit layer once and refuses a model
    without any."""
    import bitsandbytes as bnb

    from coursekit.bnb_cpu import dequantization_seconds

    model, _ = load_base_model("tiny", quantization="nf4", device="cpu")
    layers, seconds = dequantization_seconds(model, rounds=2)
    assert layers == sum(isinstance(m, bnb.nn.Linear4bit) for m in model.modules()) == 4 * 7  # 7 projections a layer
    assert 0 < seconds < 5
    plain, _ = load_base_model("tiny", device="cpu")
    with pytest.raises(ValueError, match="no 4-bit"):
        dequantization_seconds(plain)
    with pytest.raises(ValueError, match="rounds"):
        dequantization_seconds(model, rounds=0)


def test_pretraining_seq_len_reads_the_embedded_recipe():
    from coursekit.models import pretraining_seq_len
    from coursekit.models.build import Recipe

    assert pretraining_seq_len("tiny") == Recipe().seq_len == 256
    assert pretraining_seq_len("smollm2-135m-instruct") is None
