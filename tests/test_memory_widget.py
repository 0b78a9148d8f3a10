"""The memory calculator headless: set controls as a learner would, read the figure it shows."""

import pytest

from coursekit.archs import resolve_arch
from coursekit.archs.scaled import llama_shaped, llama_spec
from coursekit.memory import GB, GIB, estimate_memory
from coursekit.widgets.memory import CUSTOM, GPU_LINES, memory_calculator, render_html, size_text, total_text


@pytest.fixture(scope="module")
def calc():
    return memory_calculator()


def test_default_is_the_quoted_8b_full_fine_tune(calc):
    expected = estimate_memory("llama-3.1-8b", "full", precision="mixed-bf16", batch_size=1, seq_len=2048,
                               checkpointing=True)
    assert calc.total_bytes == expected.total_bytes
    assert calc.figure_text == total_text(expected.total_bytes)
    assert f"{expected.total_bytes / GB:,.2f} GB" in calc.output.value
    assert f"{expected.total_bytes / GIB:,.2f} GiB" in calc.output.value
    assert abs(calc.controls["parameters_b"].value - 8.030261248) < 1e-9  # the slider shows the preset's size


def test_dragging_the_size_slider_prices_a_llama_shaped_model(calc):
    before = calc.figure_text
    calc.controls["parameters_b"].value = 70.0
    assert calc.controls["model"].value == CUSTOM
    assert calc.figure_text != before
    assert calc.total_bytes == estimate_memory(llama_shaped(70e9), "full", precision="mixed-bf16", seq_len=2048,
                                               batch_size=1).total_bytes
    assert calc.total_bytes > 16 * 70e9  # 16 bytes per parameter before activations


def test_each_control_changes_the_figure_and_matches_the_estimator():
    c = memory_calculator(model="llama-3.1-8b", method="lora")
    seen = {c.figure_text}
    for key, value in [("rank", 64), ("targets", "q_proj,v_proj"), ("batch_size", 8), ("seq_len", 4096),
                       ("precision", "fp32"), ("optimizer", "adamw-8bit"), ("checkpointing", False),
                       ("method", "qlora"), ("model", "llama-3.1-70b")]:
        c.controls[key].value = value
        assert c.figure_text not in seen, key
        seen.add(c.figure_text)
    expected = estimate_memory("llama-3.1-70b", "qlora", precision="fp32", optimizer="adamw-8bit", rank=64,
                               targets="q_proj,v_proj", batch_size=8, seq_len=4096, checkpointing=False)
    assert c.total_bytes == expected.total_bytes
    assert c.controls["model"].value == "llama-3.1-70b"  # choosing a preset moves the slider, not back to custom
    assert abs(c.controls["parameters_b"].value - 70.553706496) < 1e-9


def test_full_fine_tuning_disables_lora_controls_and_set_works():
    c = memory_calculator(method="full")
    assert c.controls["rank"].disabled and c.controls["targets"].disabled
    est = c.set(method="qlora", model="llama-3.1-70b", seq_len=512)
    assert not c.controls["rank"].disabled
    assert est.total_bytes == estimate_memory("llama-3.1-70b", "qlora", precision="mixed-bf16", seq_len=512).total_bytes
    assert est.total_bytes < 79 * GIB < memory_calculator(model="llama-3.1-70b", method="lora").total_bytes
    assert "fits on" in c.output.value
    assert "H100 80GB (79.6 GiB)" in c.output.value and "A100 80GB (80.0 GiB)" in c.output.value


def test_every_control_change_redraws(calc):
    """Each change of a control redraws the figure (how fast: benchmarks/widget_latency.py)."""
    calc.set(model="llama-3.1-70b", method="lora")
    seen = {calc.output.value}
    for b in (1.0, 8.0, 70.0):
        calc.controls["parameters_b"].value = b
        seen.add(calc.output.value)
    for m in ("full", "qlora"):
        calc.controls["method"].value = m
        seen.add(calc.output.value)
    assert len(seen) == 6


def test_impossible_settings_show_an_error_instead_of_raising():
    c = memory_calculator(model="tiny", method="lora")
    assert c.set(rank=256) is None
    assert "larger than" in c.error and "Cannot estimate" in c.output.value and c.figure_text == ""
    assert c.set(rank=8) is not None and c.error == ""


@pytest.mark.parametrize("kwargs,match", [
    ({"method": "prefix"}, "method must be one of"),
    ({"model": "gpt-9"}, "model must be one of"),
    ({"parameters_b": 5000}, "parameters_b"),
    ({"batch_size": 3}, "batch_size"),
    ({"colour": "red"}, "unknown setting"),
    ({"model": "tiny", "parameters_b": 3.0}, "either"),
])
def test_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        memory_calculator(**kwargs)


def test_set_rejects_bad_values():
    c = memory_calculator()
    with pytest.raises(ValueError, match="seq_len"):
        c.set(seq_len=1000)
    with pytest.raises(ValueError, match="unknown setting"):
        c.set(gpu="T4")


@pytest.mark.parametrize("preset,shape", [("llama-3.1-8b", (4096, 32)), ("llama-3.1-70b", (8192, 80))])
def test_arithmetic_spec_equals_the_meta_model(preset, shape):
    a, b = llama_spec(*shape), resolve_arch(preset)
    assert (a.total_parameters, a.linears, a.param_numels, a.parameters_by_kind) == \
        (b.total_parameters, b.linears, b.param_numels, b.parameters_by_kind)


def test_llama_shaped_sizes():
    assert llama_shaped(8e9).total_parameters == 8_030_261_248  # Llama 3.1 8B's own shape
    for target in (1e9, 3e9, 13e9, 70e9, 405e9):
        assert abs(llama_shaped(target).total_parameters - target) / target < 0.08
    small = {"model_type": "llama", "hidden_size": 512, "intermediate_size": 1792, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 4, "head_dim": 128, "vocab_size": 128256,
             "tie_word_embeddings": False}
    assert llama_shaped(2e8).total_parameters > 0
    assert llama_spec(512, 2, num_key_value_heads=4).total_parameters == resolve_arch(small).total_parameters
    with pytest.raises(ValueError, match="between"):
        llama_shaped(5)
    with pytest.raises(ValueError, match="evenly"):
        llama_spec(768, 2, num_key_value_heads=4)


def _caption(c) -> str:
    import re

    return re.search(r"<span class='coursekit-memory-size'>([^<]*)</span>", c.output.value).group(1)


def test_sliders_send_their_value_on_release_not_every_position_passed():
    """With continuous_update the front end queues one estimate per position the handle passes, and (for a log
    slider with a step) answers a value the kernel sets with the value snapped to the step, flipping a preset back
    to a custom size: the figure then trails or contradicts the readout. Released values only, one estimate each."""
    c = memory_calculator()
    for key in ("parameters_b", "rank", "batch_size", "seq_len"):
        assert c.controls[key].continuous_update is False, key


@pytest.mark.parametrize("value,readout", [(389.0451, "389"), (70.79457843841, "70.8"), (0.1, "0.1"),
                                           (1000.0, "1,000"), (8.030261248, "8.03"), (12.589254, "12.6")])
def test_caption_states_the_slider_value_in_the_readouts_digits(value, readout):
    c = memory_calculator(parameters_b=value)
    assert size_text(value) == readout
    assert _caption(c) == readout  # what the browser test compares with the slider's readout (".3g")
    assert float(readout.replace(",", "")) == float(f"{value:.3g}")
    assert "(the size slider: a Llama-3-shaped model)" in c.output.value


def test_the_panel_is_always_for_the_last_setting():
    c = memory_calculator(method="lora")
    for b in (2.0, 40.0, 389.0451, 78.0, 389.0451):  # a drag and back
        c.controls["parameters_b"].value = b
    assert _caption(c) == "389"
    assert c.total_bytes == estimate_memory(llama_shaped(389.0451e9), "lora", precision="mixed-bf16",
                                            seq_len=2048).total_bytes
    assert "lora, mixed-bf16, adamw, batch 1 × seq 2048, checkpointing on" in c.output.value
    c.set(model="llama-3.1-70b")  # a preset: the slider moves to its size and the caption says so
    assert c.controls["model"].value == "llama-3.1-70b" and _caption(c) == "70.6"
    assert size_text(c.controls["parameters_b"].value) == "70.6"
    c.set(model="tiny")  # below the slider's range: the caption says so instead of showing the clamped value
    assert _caption(c) == "0.00348" and "outside the slider" in c.output.value


def test_gpu_lines_come_from_the_one_table_in_gib():
    from coursekit.memory.hardware import GPUS

    assert set(GPU_LINES) <= set(GPUS)
    est = estimate_memory("llama-3.1-70b", "qlora", precision="mixed-bf16", seq_len=2048)
    page = render_html(est)
    for name in GPU_LINES:
        gib = GPUS[name] / GIB
        assert f"{name}: {gib:.1f} GiB</text>" in page  # the dashed line's label
        assert (f"{name} ({gib:.1f} GiB)" in page.split("fits on: ")[1].split("</div>")[0]) == (
            est.total_bytes <= GPUS[name])


def test_an_unexpected_error_clears_the_figure(monkeypatch):
    import coursekit.widgets.memory as m

    c = memory_calculator(model="tiny", method="lora")
    assert c.figure_text

    def boom(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(m, "estimate_memory", boom)
    with pytest.raises(RuntimeError):
        c.update()
    assert c.figure_text == "" and c.estimate is None and "RuntimeError: boom" in c.output.value


@pytest.mark.parametrize("bad", [0, -1.0, True, "8", float("nan"), float("inf")])
def test_size_text_rejects_bad_input(bad):
    with pytest.raises(ValueError, match="billions must be a positive, finite number"):
        size_text(bad)
