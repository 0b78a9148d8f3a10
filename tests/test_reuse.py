"""finetune(..., reuse=True): an identical earlier run is loaded from the run cache instead of trained again.

A random-init model of the embedded shape (``random_tiny_model``: the same seed gives the same weights) stands for
a base model that two lessons load; each test has its own run cache (``COURSEKIT_RUNS_CACHE``).
"""
import json

import pytest
import torch

from coursekit.train import finetune, reuse


def _examples(n, split="train", seed=0):
    from coursekit.data import make_examples

    return make_examples(n, seed=seed, split=split)


RUN = dict(max_steps=3, batch_size=4, eval_size=8, measure_task=False, measure_general=False, progress=False,
           device="cpu", save_final=False, reuse=True)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSEKIT_RUNS_CACHE", str(tmp_path / "runs-cache"))
    return tmp_path / "runs-cache"


def _run(model, tokenizer, tmp_path, method="lora", train=None, **options):
    train = train if train is not None else _examples(16)
    return finetune(model, tokenizer, train, _examples(8, "validation"), method=method, runs_dir=tmp_path / "runs",
                    **{"title": f"{method} fine-tuning", **RUN, **options})


def _trainable(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("method", ["lora", "full"])
def test_an_identical_run_is_loaded_not_trained(random_tiny_model, tiny_tokenizer, tmp_path, cache, method, capsys):
    first = _run(random_tiny_model(seed=0), tiny_tokenizer, tmp_path, method)
    assert first.reused_from == "" and len(list(cache.iterdir())) == 1
    second = _run(random_tiny_model(seed=0), tiny_tokenizer, tmp_path, method)
    assert second.reused_from == str(next(cache.iterdir())) and second.reused_title == f"{method} fine-tuning"
    # the store names the digest of each part of the key, to compare two runs that were expected to match
    record = json.loads((next(cache.iterdir()) / "run.json").read_text())
    assert set(record["parts"]) == {"model", "tokenizer", "settings", "train_rows", "eval_rows"}
    assert reuse.key_of(record["parts"]) == record["key"] == next(cache.iterdir()).name
    assert "reused the identical run" in capsys.readouterr().out
    # the training record is the first run's; the weights are what it trained
    assert second.train_loss == first.train_loss and second.eval_loss == first.eval_loss
    assert second.steps == first.steps == 3 and second.train_seconds == first.train_seconds
    assert second.training_arguments == first.training_arguments
    a, b = _trainable(first.model), _trainable(second.model)
    assert a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)
    ids = torch.tensor([[1, 5, 9, 14, 20]])
    with torch.no_grad():
        assert torch.equal(first.model(input_ids=ids).logits, second.model(input_ids=ids).logits)
    # and the training did change the weights (the comparison above is not between two untrained models)
    untrained = _trainable(random_tiny_model(seed=0)) if method == "full" else None
    if untrained is not None:
        assert any(not torch.equal(untrained[n], a[n]) for n in a)
    else:
        assert any(n.endswith("lora_B.default.weight") and a[n].abs().sum() > 0 for n in a)


def test_measurement_settings_do_not_change_the_key_but_training_settings_do(random_tiny_model, tiny_tokenizer,
                                                                              tmp_path, cache):
    _run(random_tiny_model(seed=0), tiny_tokenizer, tmp_path)
    # what is measured, before and after the run, and how it is shown, is not training (measuring before the run
    # draws no random numbers, so the new adapter starts from the same values: lesson 04 measures before, 05 not)
    same = _run(random_tiny_model(seed=0), tiny_tokenizer, tmp_path, title="another title", metric_examples=3,
                measure_task=True, measure_before=True, test=_examples(3, "test"))
    assert same.reused_from and same.task_metric_before is not None
    # every one of these trains something else: another run, stored beside the first
    changes = [dict(learning_rate=1e-3), dict(seed=1), dict(max_steps=4), dict(rank=4), dict(eval_size=4),
               dict(train=_examples(16, seed=1))]
    for change in changes:
        other = _run(random_tiny_model(seed=0), tiny_tokenizer, tmp_path, **change)
        assert other.reused_from == "", change
    assert len(list(cache.iterdir())) == 1 + len(changes)
    other_base = _run(random_tiny_model(seed=1), tiny_tokenizer, tmp_path)  # other starting weights
    assert other_base.reused_from == ""


def test_a_tokenizer_that_padded_a_batch_is_the_same_tokenizer(tiny_tokenizer):
    before = reuse._tokenizer_text(tiny_tokenizer)
    # a call with padding and truncation leaves those settings in the fast tokenizer; each call sets its own
    tiny_tokenizer(["a", "bbb ccc"], padding=True, truncation=True, max_length=8)
    assert reuse._tokenizer_text(tiny_tokenizer) == before
    tiny_tokenizer.chat_template = "{{ messages }}"  # another template formats the rows differently
    assert reuse._tokenizer_text(tiny_tokenizer) != before


def test_reuse_false_neither_reads_nor_writes_the_cache(random_tiny_model, tiny_tokenizer, tmp_path, cache):
    _run(random_tiny_model(seed=0), tiny_tokenizer, tmp_path, reuse=False)
    assert not cache.exists()
    _run(random_tiny_model(seed=0), tiny_tokenizer, tmp_path)
    again = _run(random_tiny_model(seed=0), tiny_tokenizer, tmp_path, reuse=False)
    assert again.reused_from == ""


def test_a_damaged_store_is_reported_and_trained_again(random_tiny_model, tiny_tokenizer, tmp_path, cache):
    first = _run(random_tiny_model(seed=0), tiny_tokenizer, tmp_path)
    stored = next(cache.iterdir())
    (stored / "trained.safetensors").write_bytes(b"not a tensor file")
    with pytest.warns(UserWarning, match="could not be read back"):
        again = _run(random_tiny_model(seed=0), tiny_tokenizer, tmp_path)
    assert again.reused_from == "" and again.train_loss == first.train_loss  # trained, the same run
    assert _run(random_tiny_model(seed=0), tiny_tokenizer, tmp_path).reused_from  # and stored anew


def test_a_cache_that_cannot_be_written_does_not_lose_the_run(random_tiny_model, tiny_tokenizer, tmp_path,
                                                              monkeypatch):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("COURSEKIT_RUNS_CACHE", str(blocked / "runs"))
    with pytest.warns(UserWarning, match="could not be stored for reuse"):
        run = _run(random_tiny_model(seed=0), tiny_tokenizer, tmp_path)
    assert run.steps == 3 and run.reused_from == "" and run.model is not None


def test_the_key_covers_every_training_option():
    from dataclasses import fields

    from coursekit.train import FinetuneOptions

    not_training = {"batch_size", "grad_accum", "learning_rate", "optim", "bf16", "device",  # in the plan's fields
                    "save_final", "save_every", "output_dir", "runs_dir", "resume", "reuse", "progress",
                    "measure_task", "measure_general", "measure_before", "metric_examples", "perplexity_texts",
                    "title", "max_oom_retries"}
    names = {f.name for f in fields(FinetuneOptions)}
    assert names == not_training | set(reuse.TRAINING_OPTIONS), (
        "a new FinetuneOptions field: add it to reuse.TRAINING_OPTIONS if it changes what is trained, else here")
