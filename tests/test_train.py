"""coursekit.train: bad input caught before training, the run's report, run folders, resume, out-of-memory retry.

A randomly initialised model of the embedded architecture (``random_tiny_model``, tests/conftest.py: a new one for
each test, since a run trains it in place) and the embedded tokenizer (``tiny_tokenizer``) keep these tests
independent of the embedded weights and fast (a few optimizer steps each).
"""
import json

import pytest
import torch  # (a hard dependency: a broken torch must fail the suite, not skip it)

from coursekit.train import (  # noqa: E402
    COMMON_OPTIONS,
    METHODS,
    engine,  # noqa: E402
    finetune,
    mix_general_text,
    to_prompt_completion,
)


def _examples(n, split="train"):
    from coursekit.data import make_examples

    return make_examples(n, seed=0, split=split)


@pytest.fixture
def tokenizer(tiny_tokenizer):
    """The embedded tokenizer (its own copy: a test may change it)."""
    return tiny_tokenizer


@pytest.fixture
def model(random_tiny_model):
    """A random-init model of the embedded shape (seed 0), new for each test: finetune trains it in place."""
    return random_tiny_model(seed=0)


QUICK = dict(max_steps=3, batch_size=4, measure_task=False, measure_general=False, eval_size=8, progress=False,
             device="cpu")


def _no_runs(path):
    return not path.exists() or not any(path.iterdir())


# ------------------------------------------------------------------------------------------ bad input, no training


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "houlsby"}, "unknown method 'houlsby'; known methods: full, lora, qlora"),
    ({"method": "full", "rank": 4}, "option 'rank' does not apply to method 'full'; it is an option of lora"),
    ({"method": "lora", "num_virtual_tokens": 4}, "does not apply to method 'lora'; it is an option of prefix"),
    ({"method": "full", "colour": "red"}, "unknown option 'colour'"),
    ({"learning_rate": 0}, "learning_rate must be a positive number, got 0"),
    ({"learning_rate": -1e-4}, "learning_rate must be a positive number"),
    ({"epochs": 0}, "epochs must be a positive number"),
    ({"batch_size": 2.5}, "batch_size must be a positive integer"),
    ({"warmup": -1}, "warmup must be >= 0"),
    ({"bf16": True}, "bf16=True but cpu"),
    ({"method": "lora", "rank": 0}, "rank must be a positive integer"),
    ({"method": "lora", "alpha": 0}, "alpha must be a positive, finite number (often 2 * rank"),
    ({"method": "lora", "use_rslora": "yes"}, "use_rslora must be True"),
    ({"method": "dora", "dropout": 1.5}, "dropout must be"),
    ({"method": "prefix", "num_virtual_tokens": 0}, "num_virtual_tokens must be a positive integer"),
    ({"method": "adapter", "bottleneck": -8}, "bottleneck must be a positive integer"),
    ({"method": "ia3", "feedforward_modules": ["gate_proj"]}, "feedforward_modules ['gate_proj'] are not in"),
    ({"method": "ia3", "target_modules": []}, "target_modules must be a module name or a non-empty list"),
    ({"resume": True}, "resume=True needs output_dir"),
    ({"early_stopping_patience": 2, "save_every": 5}, "set one of them, not both"),
    ({"method": "qlora"}, "load_base_model(name, quantization='nf4')"),
    ({"progress": "sometimes"}, "progress must be 'auto', True or False"),
    ({"method": "lora", "adapter_dtype": "fp16"}, 'adapter_dtype must be None (auto), "fp32" or "bf16", got \'fp16\''),
    ({"method": "full", "adapter_dtype": "bf16"}, "method 'full' trains the model's own weights"),
])
def test_bad_options_raise_before_training(model, tokenizer, tmp_path, kwargs, message):
    kwargs = {**QUICK, "runs_dir": tmp_path / "runs", **kwargs}
    with pytest.raises(ValueError) as err:
        finetune(model, tokenizer, _examples(8), _examples(4, "validation"), **kwargs)
    assert message in str(err.value)
    assert _no_runs(tmp_path / "runs")


def test_bad_data_raises_before_training(model, tokenizer, tmp_path):
    runs = tmp_path / "runs"
    good = _examples(8)
    cases = [
        ([{"instruction": "Triage.", "input": "x"}], None, "train example 0 is missing field(s) ['output']"),
        ([], None, "the train split is empty"),
        (good, [], "the eval split is empty"),
        ([{"prompt": "a", "completion": "b"}, {"question": "?"}], None, "train example 1 is missing field(s)"),
        (good, [{"instruction": "Triage.", "input": "x", "output": ""}], "eval example 0 has an empty 'output'"),
    ]
    for train, eval_, message in cases:
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                           .replace("]", r"\]")):
            finetune(model, tokenizer, train, eval_, runs_dir=runs, **QUICK)
    with pytest.raises(ValueError, match="early_stopping_patience watches the validation loss"):
        finetune(model, tokenizer, good, None, runs_dir=runs, early_stopping_patience=1, **QUICK)
    assert _no_runs(runs)


def test_too_long_sequences_raise_before_training(model, tokenizer, tmp_path):
    context = model.config.max_position_embeddings
    long_row = {"instruction": "Summarize.", "input": "word " * (2 * context), "output": "short"}
    with pytest.raises(ValueError, match=rf"train example 1 is \d+ tokens long, more than the {context} the model"):
        finetune(model, tokenizer, [_examples(1)[0], long_row], None, runs_dir=tmp_path, **QUICK)
    with pytest.raises(ValueError, match="more than the 20 the model takes"):
        finetune(model, tokenizer, _examples(4), None, runs_dir=tmp_path, max_length=20, **QUICK)
    assert _no_runs(tmp_path)


def test_option_defaults_are_documented():
    assert COMMON_OPTIONS["lr_scheduler"] == "cosine" and COMMON_OPTIONS["warmup"] == 0.1
    assert set(METHODS) >= {"full", "lora", "qlora", "dora", "ia3", "prefix", "prompt", "adapter"}
    assert METHODS["qlora"].optim == "paged_adamw_8bit" and METHODS["qlora"].needs_quantized_model
    assert METHODS["full"].saves == "model" and METHODS["lora"].saves == "adapter"


# -------------------------------------------------------------------------------------------------- data helpers


def test_rows_become_prompt_completion():
    from coursekit.data import format_prompt

    ex = _examples(1)[0]
    rows = to_prompt_completion([ex, {"text": "The sky is blue."}, {"prompt": "Q: ", "completion": "A"}])
    assert rows[0] == {"prompt": format_prompt(ex), "completion": ex["output"]}
    assert rows[0]["prompt"].endswith("### Response:\n")
    assert rows[1] == {"prompt": "", "completion": "The sky is blue."}
    assert rows[2] == {"prompt": "Q: ", "completion": "A"}


def test_mix_general_text_fraction():
    mixed = mix_general_text(_examples(30), ["general one", "general two"], fraction=0.25, seed=1)
    general = [r for r in mixed if r["prompt"] == ""]
    assert len(mixed) == 40 and len(general) == 10
    assert mixed != sorted(mixed, key=lambda r: r["prompt"] == "")  # shuffled in
    with pytest.raises(ValueError, match=r"fraction must be in \[0, 1\)"):
        mix_general_text(_examples(3), ["x"], fraction=1.0)
    with pytest.raises(ValueError, match="at least one general text"):
        mix_general_text(_examples(3), [], fraction=0.5)


# ------------------------------------------------------------------------------------------------------- real runs


def test_full_run_report_and_numbered_folders(model, tokenizer, tmp_path):
    runs = tmp_path / "runs"
    r = finetune(model, tokenizer, _examples(24), _examples(8, "validation"), runs_dir=runs, learning_rate=1e-3,
                 log_every=1, **QUICK)
    assert r.method == "full" and r.steps == 3 and r.device == "cpu"
    assert [s for s, _ in r.train_loss] == [1, 2, 3]
    assert r.eval_loss[0][0] == 0 and r.eval_loss[-1][0] == 3  # validation before training and at the end
    assert r.eval_loss[-1][1] < r.eval_loss[0][1]  # it learned something
    assert r.trainable_parameters == r.total_parameters == 3_475_712
    # 3 steps x 4 examples, padding excluded: between the shortest and longest example each time
    lengths = [len(ids) for ids in tokenizer([x["prompt"] + x["completion"] for x in
                                              to_prompt_completion(_examples(24))])["input_ids"]]
    assert 12 * min(lengths) <= r.train_tokens <= 12 * (max(lengths) + 1)
    assert r.tokens_per_second == pytest.approx(r.train_tokens / r.train_seconds)
    assert r.peak_memory_bytes >= 4 * 3_475_712  # at least the fp32 weights
    assert r.estimated_memory_bytes and r.estimated_memory_bytes > 4 * 3_475_712
    assert r.output_dir == str(runs / "full-001")
    final = runs / "full-001" / "final"
    assert (final / "model.safetensors").exists()
    assert 4 * 3_475_712 <= r.checkpoint_bytes <= 4 * 3_475_712 * 1.05  # every weight once (tied embedding)
    d = r.to_dict()
    assert json.loads(json.dumps(d))["train_loss"][0][0] == 1
    r2 = finetune(r.model, tokenizer, _examples(8), None, runs_dir=runs, save_final=False, **QUICK)
    assert r2.output_dir == str(runs / "full-002") and r2.eval_loss == [] and r2.checkpoint_bytes == 0


def test_explicit_output_dir_is_never_overwritten(model, tokenizer, tmp_path):
    out = tmp_path / "mine"
    finetune(model, tokenizer, _examples(8), None, output_dir=out, **{**QUICK, "max_steps": 1})
    before = sorted(p.name for p in out.rglob("*"))
    with pytest.raises(ValueError, match="already holds an earlier run"):
        finetune(model, tokenizer, _examples(8), None, output_dir=out, **{**QUICK, "max_steps": 1})
    assert sorted(p.name for p in out.rglob("*")) == before


def test_lora_saves_only_the_adapter(model, tokenizer, tmp_path):
    r = finetune(model, tokenizer, _examples(16), _examples(4, "validation"), method="lora", rank=4,
                 runs_dir=tmp_path, **QUICK)
    assert r.output_dir.endswith("lora-001")
    # rank 4 on q,k,v,o,gate,up,down of 4 layers: 4 * 4 * (3*(256+256) + ... ) exactly as peft counts
    assert r.trainable_parameters == 4 * 4 * ((256 + 256) + (256 + 128) * 2 + (256 + 256)
                                              + (256 + 704) * 2 + (704 + 256))
    assert r.total_parameters == 3_475_712 + r.trainable_parameters
    assert (tmp_path / "lora-001" / "final" / "adapter_model.safetensors").exists()
    assert r.checkpoint_bytes < 4 * r.trainable_parameters + 20_000  # the adapter (fp32) and its config only


def test_task_metric_and_probe_before_and_after(model, tokenizer, tmp_path):
    calls = []
    from coursekit import evaluate

    real = evaluate.task_metric

    def spy(m, tok, examples, **kw):
        calls.append(len(examples))
        return real(m, tok, examples, max_new_tokens=4, **kw)

    evaluate.task_metric = spy
    try:
        r = finetune(model, tokenizer, _examples(8), _examples(6, "validation"), test=_examples(5, "test"),
                     runs_dir=tmp_path, save_final=False, perplexity_texts=["The sky is blue."],
                     **{**QUICK, "measure_task": True, "max_steps": 1, "metric_examples": 3})
    finally:
        evaluate.task_metric = real
    assert calls == [3, 3]  # before and after, on the first metric_examples of test
    assert r.task_metric_before == 0.0 and r.task_metric_after == 0.0  # a random model gets nothing right
    assert r.general_probe_before is None and r.general_probe_after is None  # switched off
    assert r.perplexity_before > 100 and r.perplexity_after > 1


def test_resume_from_checkpoint(model, tokenizer, tmp_path, random_tiny_model):
    out = tmp_path / "run"
    r1 = finetune(model, tokenizer, _examples(32), None, output_dir=out, save_every=2, save_final=False,
                  **{**QUICK, "max_steps": 4})
    assert (out / "checkpoint-4").is_dir() and r1.steps == 4
    fresh = random_tiny_model(seed=1)  # a new model; the checkpoint brings the trained weights
    r2 = finetune(fresh, tokenizer, _examples(32), None, output_dir=out, resume=True, save_every=2,
                  **{**QUICK, "max_steps": 6})
    assert r2.steps == 6
    assert [s for s, _ in r2.train_loss][0] > 4  # it went on from step 4, not from 0
    with pytest.raises(ValueError, match="holds no checkpoint"):
        finetune(fresh, tokenizer, _examples(8), None, output_dir=tmp_path / "empty", resume=True, **QUICK)


def test_early_stopping_on_validation_loss(model, tokenizer, tmp_path):
    # a learning rate far too high makes the validation loss climb: training stops after 2 bad evaluations
    r = finetune(model, tokenizer, _examples(64), _examples(8, "validation"), runs_dir=tmp_path,
                 early_stopping_patience=2, eval_every=1, learning_rate=0.5, warmup=0, save_final=False,
                 **{**QUICK, "max_steps": 12})
    assert r.stopped_early and r.steps < 12
    assert len(r.eval_loss) >= 3


def test_out_of_memory_retries_with_half_batch(model, tokenizer, tmp_path, monkeypatch, capsys):
    seen = []
    real = engine._train_once

    def flaky(trainer, resume):
        seen.append((trainer.args.per_device_train_batch_size, trainer.args.gradient_accumulation_steps))
        if len(seen) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(trainer, resume)

    monkeypatch.setattr(engine, "_train_once", flaky)
    r = finetune(model, tokenizer, _examples(16), None, runs_dir=tmp_path, save_final=False,
                 **{**QUICK, "batch_size": 4, "grad_accum": 2, "max_steps": 1})
    assert seen == [(4, 2), (2, 4)]  # same effective batch of 8
    assert (r.batch_size, r.grad_accum, r.oom_retries) == (2, 4, 1)
    out = capsys.readouterr().out
    assert "out of memory at micro-batch 4 x accumulation 2" in out
    assert "The estimator puts this run at" in out and "micro-batch 2 x accumulation 4" in out


def test_out_of_memory_gives_up_at_batch_one(model, tokenizer, tmp_path, monkeypatch):
    def always(trainer, resume):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(engine, "_train_once", always)
    with pytest.raises(torch.OutOfMemoryError):
        finetune(model, tokenizer, _examples(8), None, runs_dir=tmp_path, **{**QUICK, "batch_size": 2})


def test_loss_is_on_the_response_only(model, tokenizer, tmp_path, monkeypatch):
    """The labels the trainer sees mask every prompt token (-100) and keep every response token."""
    captured = {}
    real = engine._train_once

    def grab(trainer, resume):
        captured["row"] = trainer.train_dataset[0]
        return real(trainer, resume)

    monkeypatch.setattr(engine, "_train_once", grab)
    ex = _examples(1)[0]
    finetune(model, tokenizer, [ex] * 4, None, runs_dir=tmp_path, save_final=False, **{**QUICK, "max_steps": 1})
    ids, labels = captured["row"]["input_ids"], captured["row"]["labels"]
    n_prompt = len(tokenizer(to_prompt_completion([ex])[0]["prompt"])["input_ids"])
    assert all(v == -100 for v in labels[:n_prompt])
    assert labels[n_prompt:] == ids[n_prompt:] and ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ids[n_prompt:], skip_special_tokens=True) == ex["output"]


def test_a_max_steps_run_reads_a_random_draw_of_the_examples_it_needs(model, tokenizer, tmp_path, monkeypatch):
    """max_steps x batch x accumulation examples, drawn with the seed from the whole split (not its first rows), are
    all the trainer is given; without max_steps, or with fewer rows than that, every row."""
    seen = {}
    real = engine._train_once

    def grab(trainer, resume):
        seen["rows"] = len(trainer.train_dataset)
        return real(trainer, resume)

    monkeypatch.setattr(engine, "_train_once", grab)
    rows = _examples(200)
    result = finetune(model, tokenizer, rows, None, runs_dir=tmp_path, save_final=False,
                      **{**QUICK, "max_steps": 2, "batch_size": 3, "grad_accum": 2})
    assert seen["rows"] == result.train_examples == 2 * 3 * 2
    assert result.steps == 2
    picked = engine._examples_read(rows, engine.plan_run(
        engine.METHODS["full"], engine.FinetuneOptions(max_steps=2, batch_size=3, grad_accum=2, seed=0), {}, model))
    assert picked != rows[:12] and all(r in rows for r in picked)  # a random draw, the same for the same seed
    assert picked == engine._examples_read(rows, engine.plan_run(
        engine.METHODS["full"], engine.FinetuneOptions(max_steps=2, batch_size=3, grad_accum=2, seed=0), {}, model))
    few = finetune(model, tokenizer, rows[:5], None, runs_dir=tmp_path, save_final=False,
                   **{**QUICK, "max_steps": 2, "batch_size": 3, "grad_accum": 2})
    assert few.train_examples == seen["rows"] == 5


def test_rslora_reaches_peft(model):
    """use_rslora=True gives peft's scale alpha/sqrt(r) instead of alpha/r."""
    import math

    from coursekit.train.methods import _lora_config

    options = {**engine.METHODS["lora"].options, "rank": 16, "alpha": 8}
    assert _lora_config(options).use_rslora is False
    cfg = _lora_config({**options, "use_rslora": True})
    from peft import get_peft_model
    from peft.tuners.lora import LoraLayer

    layers = [m for m in get_peft_model(model, cfg).modules() if isinstance(m, LoraLayer)]
    assert layers and all(m.scaling["default"] == pytest.approx(8 / math.sqrt(16)) for m in layers)


@pytest.mark.parametrize("method, options", [
    ("dora", {"rank": 4}), ("ia3", {}), ("prefix", {"num_virtual_tokens": 4}), ("prompt", {"num_virtual_tokens": 4}),
])
def test_peft_methods_train(model, tokenizer, tmp_path, method, options):
    r = finetune(model, tokenizer, _examples(8), _examples(4, "validation"), method=method, runs_dir=tmp_path,
                 learning_rate=1e-2, **{**QUICK, "max_steps": 2}, **options)
    assert 0 < r.trainable_parameters < r.total_parameters / 10
    assert r.steps == 2 and len(r.train_loss) == 2
    assert 0 < r.checkpoint_bytes < 1_000_000


def test_houlsby_adapter_method(model, tokenizer, tmp_path):
    r = finetune(model, tokenizer, _examples(8), None, method="adapter", bottleneck=8, runs_dir=tmp_path,
                 learning_rate=1e-3, **{**QUICK, "max_steps": 2})
    assert 0 < r.trainable_parameters < 100_000
    assert (tmp_path / "adapter-001" / "final" / "adapter_model.safetensors").exists()
    assert r.checkpoint_bytes < 4 * r.trainable_parameters + 10_000


def test_qlora_on_a_4bit_model(tokenizer, tmp_path, random_tiny_folder, tiny_config):
    from transformers import AutoModelForCausalLM

    from coursekit.models import quantization_config

    q = AutoModelForCausalLM.from_pretrained(random_tiny_folder, quantization_config=quantization_config("nf4"),
                                             device_map={"": "cpu"}, dtype=torch.float32)
    r = finetune(q, tokenizer, _examples(8), None, method="qlora", rank=4, runs_dir=tmp_path / "runs",
                 **{**QUICK, "max_steps": 2})
    assert r.config["optim"] == "paged_adamw_8bit"
    assert r.steps == 2 and 0 < r.trainable_parameters < 100_000
    assert r.quantization_config["load_in_4bit"] and r.quantization_config["bnb_4bit_quant_type"] == "nf4"
    assert r.peft_config["r"] == 4 and r.training_arguments["optim"] == "paged_adamw_8bit"
    # SFTTrainer casts a 4-bit model's adapters to bf16; a run that does not compute in bf16 trains them in fp32
    assert {p.dtype for p in r.model.parameters() if p.requires_grad} == {torch.float32}
    # unless asked to keep TRL's bf16 (benchmarks/qlora_cpu_dtypes.py times both)
    q2 = AutoModelForCausalLM.from_pretrained(random_tiny_folder, quantization_config=quantization_config("nf4"),
                                              device_map={"": "cpu"}, dtype=torch.float32)
    r2 = finetune(q2, tokenizer, _examples(8), None, method="qlora", rank=4, runs_dir=tmp_path / "runs",
                  adapter_dtype="bf16", **{**QUICK, "max_steps": 1})
    assert {p.dtype for p in r2.model.parameters() if p.requires_grad} == {torch.bfloat16}
    from coursekit.memory import estimate_memory

    full = estimate_memory(tiny_config, "full", precision="fp32", optimizer="adamw",
                           batch_size=4, seq_len=128, checkpointing=False, device="cpu")
    assert 0 < r.estimated_memory_bytes < full.total_bytes  # 4-bit frozen weights, no full optimizer state


# ------------------------------------------------------------------------------- the recipe written out by hand


def test_recipe_written_out_builds_the_same_run(model, tokenizer, tmp_path, random_tiny_model):
    """What lessons 03-05 show: SFTConfig + LoraConfig by hand, compared with what finetune built."""
    from peft import LoraConfig
    from trl import SFTConfig

    from coursekit.train.recipe import recipe_report

    r = finetune(model, tokenizer, _examples(8), None, method="lora", runs_dir=tmp_path, learning_rate=1e-3, rank=4,
                 alpha=8, seed=7, **QUICK)
    shown = SFTConfig(output_dir=str(tmp_path / "recipe"), max_steps=3, per_device_train_batch_size=4,
                      gradient_accumulation_steps=1, learning_rate=1e-3, lr_scheduler_type="cosine", warmup_steps=0.1,
                      weight_decay=0.01, optim="adamw_torch", bf16=False, activation_checkpointing=False,
                      max_length=None, completion_only_loss=True, seed=7, report_to="none")
    lora = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear", bias="none",
                      task_type="CAUSAL_LM")
    same, text = recipe_report({"LoraConfig": (lora, r.peft_config)})
    assert not same and "'all-linear' on the page" in text  # peft expands "all-linear" to the layer names ...
    from peft import get_peft_model

    applied = get_peft_model(random_tiny_model(), lora).peft_config["default"]
    same, text = recipe_report({"SFTConfig": (shown, r.training_arguments), "LoraConfig": (applied, r.peft_config)})
    assert same, text  # ... so the lessons compare the config the page's trainer applied
    # what is left out follows from what each config is, not from its label
    same, text = recipe_report({"training": (shown, r.training_arguments), "adapter": (applied, r.peft_config)})
    assert same, text

    other = SFTConfig(**{**shown.to_dict(), "learning_rate": 2e-4, "seed": 7})
    same, text = recipe_report({"SFTConfig": (other, r.training_arguments)})
    assert not same and "`SFTConfig.learning_rate`: **0.0002 on the page, 0.001 in `finetune`**" in text
    same, text = recipe_report({"SFTConfig": (SFTConfig(**{**shown.to_dict(), "max_steps": 1}),
                                              r.training_arguments)},
                               expected={"max_steps": "a shorter demonstration"})
    assert same and "`SFTConfig.max_steps`: 1 on the page, 3 in `finetune` (a shorter demonstration)" in text


def test_ignored_keys_follow_the_kind_of_config():
    from peft import LoraConfig
    from transformers import BitsAndBytesConfig
    from trl import SFTConfig

    from coursekit.train.recipe import BOOKKEEPING, PEFT_FILLED_IN, ignored_keys

    assert ignored_keys(SFTConfig(output_dir="x", report_to="none", bf16=False, use_cpu=True)) == BOOKKEEPING
    assert ignored_keys(LoraConfig(r=4)) == PEFT_FILLED_IN
    assert ignored_keys(BitsAndBytesConfig(load_in_4bit=True)) == frozenset()


def test_changed_defaults_name_checkpointing_as_the_recipe_writes_it():
    from trl import SFTConfig

    from coursekit.train.recipe import changed_defaults, changed_defaults_markdown

    config = SFTConfig(output_dir="x", report_to="none", bf16=False, use_cpu=True, activation_checkpointing=False,
                       learning_rate=1e-3)
    rows = {key: (default, value) for key, default, value in changed_defaults(config)}
    assert rows["activation_checkpointing"] == (True, False)  # SFTConfig turns checkpointing on by default
    assert rows["learning_rate"] == (2e-5, 1e-3)
    table = changed_defaults_markdown(config)
    assert "gradient_checkpointing" not in rows and "| `activation_checkpointing` | `True` | `False` |" in table
    # TRL's configs build bf16=None as True unless fp16: the table says so beside the declared None
    assert rows["bf16"] == (None, False) and "| `bf16` | `None` (built as `True` unless `fp16`) | `False` |" in table
    untouched = SFTConfig(output_dir="x", report_to="none", bf16=False, use_cpu=True)
    assert "activation_checkpointing" not in {k for k, _, _ in changed_defaults(untouched)}


def test_recipe_differences_on_plain_dicts():
    from coursekit.train.recipe import recipe_differences

    assert recipe_differences({"a": 1, "output_dir": "x"}, {"a": 1, "output_dir": "y"}) == []
    assert recipe_differences({"a": 1, "b": {2, 1}}, {"a": 2, "b": [1, 2], "c": 3}) == [("a", 1, 2), ("c", None, 3)]
    with pytest.raises(ValueError, match="the built one is empty"):
        recipe_differences({"a": 1}, {})
    with pytest.raises(TypeError, match="expected a config object"):
        recipe_differences(3, {"a": 1})


# ---------------------------------------------------------------------------------------------- progress and plots


def test_progress_is_quiet_outside_a_notebook(monkeypatch):
    from coursekit.train.callbacks import want_progress

    monkeypatch.delenv("COURSEKIT_PROGRESS", raising=False)
    assert want_progress("auto") is False  # pytest: no notebook
    assert want_progress(True) is True and want_progress(False) is False
    monkeypatch.setenv("COURSEKIT_PROGRESS", "1")
    assert want_progress("auto") is True


def test_plots():
    from coursekit.plots import plot_loss_curves, plot_sweep

    fig = plot_loss_curves([(1, 3.0), (2, 2.0)], [(0, 3.5), (2, 2.5)], title="t")
    ax = fig.axes[0]
    assert [list(line.get_ydata()) for line in ax.get_lines()] == [[3.0, 2.0], [3.5, 2.5]]
    fig = plot_sweep([1e-5, 1e-4], {"task": [0.1, 0.9], "probe": [1.0, 0.5]}, xlabel="learning rate")
    assert len(fig.axes[0].get_lines()) == 2 and fig.axes[0].get_xscale() == "log"
    with pytest.raises(ValueError, match="has 1 values for 2 x values"):
        plot_sweep([1, 2], {"task": [0.1]}, xlabel="x")
    with pytest.raises(ValueError, match="list of \\(step, value\\) pairs"):
        plot_loss_curves([1, 2, 3])


# ------------------------------------------------------------------------------- options, plan, what is left changed


def test_options_are_a_typed_config_with_help():
    from dataclasses import fields

    from coursekit.train import FinetuneOptions

    assert COMMON_OPTIONS == {f.name: f.default for f in fields(FinetuneOptions)}
    assert len(COMMON_OPTIONS) == 35  # lesson 03 prints the count
    assert all(f.metadata["help"] for f in fields(FinetuneOptions))
    assert FinetuneOptions().warmup == 0.1 and FinetuneOptions().learning_rate is None
    FinetuneOptions(batch_size=4.0, warmup=10).check()  # a whole float is a batch size; warmup 10 = 10 steps
    for bad, message in [({"eval_size": None}, "eval_size must be a positive integer, got None"),
                         ({"max_steps": True}, "max_steps must be a positive integer"),
                         ({"weight_decay": float("nan")}, "weight_decay must be >= 0"),
                         ({"bf16": 1}, "bf16 must be None (auto), True or False, got 1")]:
        with pytest.raises(ValueError) as err:
            FinetuneOptions(**bad).check()
        assert message in str(err.value)


def test_run_plan_is_decided_once(model):
    from coursekit.train import FinetuneOptions
    from coursekit.train.engine import plan_run

    lora = METHODS["lora"]
    plan = plan_run(lora, FinetuneOptions(device="cpu"), dict(lora.options), model)
    assert (plan.device, plan.bf16, plan.batch_size, plan.grad_accum) == ("cpu", False, 16, 1)
    assert (plan.learning_rate, plan.optim) == (3e-4, "adamw_torch")  # the method's defaults
    assert plan.length_limit == model.config.max_position_embeddings and plan.max_length is None
    assert plan.config["learning_rate"] == 3e-4 and plan.config["rank"] == 8 and plan.config["epochs"] == 3
    halved = plan.halved()
    assert (halved.batch_size, halved.grad_accum) == (8, 2) and (plan.batch_size, plan.grad_accum) == (16, 1)
    prompt = METHODS["prompt"]
    plan = plan_run(prompt, FinetuneOptions(device="cpu", packing=True, learning_rate=0.5, batch_size=2),
                    {"num_virtual_tokens": 6}, model)
    context = model.config.max_position_embeddings - 6  # the soft prompt takes part of the context
    assert (plan.length_limit, plan.max_length, plan.learning_rate, plan.batch_size) == (context, context, 0.5, 2)


def test_estimate_bridge_takes_plain_arguments(model):
    import subprocess
    import sys

    from coursekit.memory import estimated_training_bytes

    code = ("import sys, coursekit.memory.peak; "
            "print([m for m in sys.modules if m.startswith('coursekit.train') or m == 'torch'])")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "[]"
    full = estimated_training_bytes(model, "full", optim="adamw_torch", batch_size=4, seq_len=64, bf16=False)
    assert full > 4 * 3_475_712 * 3  # weights, gradients and two AdamW moments, in fp32
    lora = estimated_training_bytes(model, "lora", optim="adamw_torch", batch_size=4, seq_len=64, bf16=False, rank=4,
                                    target_modules="all-linear")
    assert 4 * 3_475_712 < lora < full
    assert estimated_training_bytes(model, "ia3", optim="adamw_torch", batch_size=4, seq_len=64, bf16=False) is None
    assert estimated_training_bytes(model, "full", optim="adafactor", batch_size=4, seq_len=64, bf16=False) is None


def test_the_callers_tokenizer_is_not_changed(model, tokenizer, tmp_path):
    import copy

    no_pad = copy.deepcopy(tokenizer)
    no_pad.pad_token = None
    r = finetune(model, no_pad, _examples(8), None, runs_dir=tmp_path, save_final=False, **{**QUICK, "max_steps": 1})
    assert no_pad.pad_token is None  # the caller's tokenizer as it was
    assert r.tokenizer is not no_pad and r.tokenizer.pad_token == no_pad.eos_token  # the run's copy, returned
    assert r.tokenizer("a b c")["input_ids"] == no_pad("a b c")["input_ids"]
    r = finetune(r.model, tokenizer, _examples(8), None, runs_dir=tmp_path, save_final=False,
                 **{**QUICK, "max_steps": 1})
    assert r.tokenizer is tokenizer  # it had a padding token: nothing to change, no copy


def test_a_model_adapted_by_an_earlier_run_is_refused(model, tokenizer, tmp_path, random_tiny_model):
    runs = tmp_path / "runs"
    r = finetune(model, tokenizer, _examples(8), None, method="lora", rank=4, runs_dir=runs, save_final=False,
                 **{**QUICK, "max_steps": 1})
    # peft wrapped the model in place: both the returned PEFT model and the caller's model carry the adapters
    for adapted in (r.model, model):
        for method in ("lora", "full"):
            with pytest.raises(ValueError, match="load a fresh base model for each run"):
                finetune(adapted, tokenizer, _examples(8), None, method=method, runs_dir=runs, **QUICK)
    from coursekit import scratch

    other = random_tiny_model()
    scratch.inject_adapters(other, 4)  # coursekit's own adapters count too
    with pytest.raises(ValueError, match="already carries adapters from an earlier PEFT run"):
        finetune(other, tokenizer, _examples(8), None, method="adapter", runs_dir=runs, **QUICK)
    assert sorted(p.name for p in runs.iterdir()) == ["lora-001"]  # nothing else started


# ------------------------------------------------------------------------------------------ a fresh model per run


def test_base_model_options_follow_the_method():
    import torch

    from coursekit.train.fresh import base_model_options

    assert base_model_options("full") == {"quantization": None, "dtype": torch.float32}  # fp32 master weights
    assert base_model_options("qlora") == {"quantization": "nf4", "dtype": None}
    assert base_model_options("lora") == {"quantization": None, "dtype": None}
    with pytest.raises(ValueError, match="unknown method 'houlsby'"):
        base_model_options("houlsby")


def test_fresh_runs_train_each_run_on_a_fresh_base_and_a_repeated_run_once(tmp_path):
    from datasets import Dataset

    from coursekit.train import FreshRuns

    train = Dataset.from_list(_examples(8))
    runs = FreshRuns("tiny", train, None, method="lora", runs_dir=tmp_path, save_final=False, **QUICK)
    first = runs("first", learning_rate=1e-3)
    assert first.config["title"] == "first" and first.steps == QUICK["max_steps"]
    assert runs("same run, other title", learning_rate=1e-3) is first  # trained once
    other = runs("other rate", learning_rate=2e-3)
    assert other is not first and other.model is not first.model
    # each run started from the same base weights: the two runs' untouched base weights are equal
    base = dict(first.model.get_base_model().named_parameters())
    for name, p in other.model.get_base_model().named_parameters():
        if "lora_" not in name:
            assert p.data.equal(base[name].data), name
    assert runs("four examples", 4, learning_rate=1e-3) is not first
    assert runs("own rows", rows=Dataset.from_list(_examples(4)), learning_rate=1e-3).steps == QUICK["max_steps"]
    assert len(runs.trained) == 3  # a run on its own rows is not kept for reuse
    with pytest.raises(ValueError, match="not both"):
        runs("x", 4, rows=train)
    with pytest.raises(ValueError, match=r"n_examples must be between 1 and 8 \(the training split\), got 9"):
        runs("x", 9)


def test_lora_defaults_are_the_ones_lesson_04_states():
    """Lesson 04's Markdown names finetune's LoRA defaults; this fails when one of them changes."""
    from pathlib import Path

    from coursekit.train import METHODS

    options = METHODS["lora"].options
    assert (options["rank"], options["alpha"], options["dropout"]) == (8, 16, 0.0)
    lesson = (Path(__file__).parents[1] / "notebooks" / "04_lora.py").read_text()
    assert "(rank 8, alpha 16, no dropout by default)" in lesson
