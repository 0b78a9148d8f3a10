"""Lesson 02's memory calculator: pick a model (or slide a parameter count), a method and a training setup; read the
peak memory per component as a stacked bar against GPU capacities (in GiB, as the driver reports them), and the total
in GB and GiB.

A thin front end over :func:`coursekit.memory.estimate_memory`. The picture is a small SVG inside an HTML widget
(no matplotlib), so every change redraws in a few milliseconds. The sliders send their value when released
(``continuous_update=False``): the kernel prices the value the readout shows, once, instead of working through a
queue of every position the handle passed (and ipywidgets' log slider, answering a value set from Python with the
value snapped to its step, cannot turn a preset back into a custom size). The caption repeats the size it priced, in
the readout's three significant digits, and every other setting. It works headless, which is how it is tested::

    calc = memory_calculator(model="llama-3.1-8b", method="full")
    calc.controls["parameters_b"].value = 70     # as a learner drags the slider: a 70B Llama-shaped model
    calc.figure_text                             # 'Total (peak): ... GB = ... GiB'
    calc.set(method="qlora", seq_len=512)        # several controls at once; returns the new MemoryEstimate
"""
from __future__ import annotations

import html

from coursekit.memory.estimator import COMPONENTS, estimate_memory
from coursekit.memory.hardware import GPU_TABLE, gpu_spec
from coursekit.memory.recipes import ESTIMATED_METHODS, OPTIMIZERS, PRECISIONS
from coursekit.units import GB, GIB
from coursekit.validate import positive_number

CUSTOM = "custom size (slider)"
#: GPUs drawn as capacity lines (names from coursekit.memory.hardware.GPU_TABLE, which holds their capacities).
GPU_LINES = ("T4", "RTX 4090", "A100 40GB", "H100 80GB", "A100 80GB", "H200")
COLOURS = {"weights": "#4e79a7", "adapter_weights": "#59a14f", "gradients": "#f28e2b", "optimizer": "#e15759",
           "activations": "#76b7b2", "overhead": "#bab0ac"}
RANKS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
BATCHES = (1, 2, 4, 8, 16, 32, 64)
SEQ_LENS = (128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
TARGETS = ("all-linear", "q_proj,v_proj", "q_proj,k_proj,v_proj,o_proj")
MIN_BILLIONS, MAX_BILLIONS = 0.1, 1000.0

DEFAULTS = {"model": "llama-3.1-8b", "parameters_b": 8.0, "method": "full", "rank": 16, "targets": "all-linear",
            "batch_size": 1, "seq_len": 2048, "precision": "mixed-bf16", "optimizer": "adamw", "checkpointing": True}


def _model_choices() -> list[str]:
    from coursekit.archs.presets import preset_names

    return [CUSTOM, *preset_names()]


def _allowed() -> dict:
    return {"model": _model_choices(), "method": list(ESTIMATED_METHODS), "rank": list(RANKS), "targets": list(TARGETS),
            "batch_size": list(BATCHES), "seq_len": list(SEQ_LENS), "precision": list(PRECISIONS),
            "optimizer": list(OPTIMIZERS), "checkpointing": [True, False]}


def _check(values: dict) -> None:
    for key, allowed in _allowed().items():
        if values[key] not in allowed or (key == "checkpointing" and not isinstance(values[key], bool)):
            raise ValueError(f"{key} must be one of {', '.join(map(str, allowed))}; got {values[key]!r}")
    p = values["parameters_b"]
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not MIN_BILLIONS <= p <= MAX_BILLIONS:
        raise ValueError(f"parameters_b must be a number of billions between {MIN_BILLIONS} and {MAX_BILLIONS}, "
                         f"got {p!r}")


class MemoryCalculator:
    """The controls, the panel, and the latest :class:`~coursekit.memory.MemoryEstimate` (``.estimate``)."""

    def __init__(self, **values) -> None:
        import ipywidgets as w

        unknown = [k for k in values if k not in DEFAULTS]
        if unknown:
            raise ValueError(f"unknown setting(s) {unknown}; the calculator has: {', '.join(DEFAULTS)}")
        v = {**DEFAULTS, **values}
        if "model" in values and "parameters_b" in values and values["model"] != CUSTOM:
            raise ValueError("give either model=<preset> or parameters_b=<billions> (with model left out), not both")
        if "parameters_b" in values and "model" not in values:
            v["model"] = CUSTOM
        _check(v)
        style, wide = {"description_width": "13em"}, w.Layout(width="36em")
        self.controls = {
            "parameters_b": w.FloatLogSlider(value=float(v["parameters_b"]), base=10, min=-1, max=3, step=0.01,
                                             description="parameters (billions)", readout_format=".3g",
                                             continuous_update=False, style=style, layout=wide),
            "model": w.Dropdown(options=_model_choices(), value=v["model"], description="architecture",
                                style=style, layout=wide),
            "method": w.ToggleButtons(options=list(ESTIMATED_METHODS), value=v["method"], description="method", style=style),
            "rank": w.SelectionSlider(options=list(RANKS), value=v["rank"], description="LoRA rank", style=style,
                                      continuous_update=False, layout=wide),
            "targets": w.Dropdown(options=list(TARGETS), value=v["targets"], description="LoRA targets",
                                  style=style, layout=wide),
            "batch_size": w.SelectionSlider(options=list(BATCHES), value=v["batch_size"], description="micro-batch",
                                            continuous_update=False, style=style, layout=wide),
            "seq_len": w.SelectionSlider(options=list(SEQ_LENS), value=v["seq_len"], continuous_update=False,
                                         description="sequence (tokens)", style=style, layout=wide),
            "precision": w.Dropdown(options=list(PRECISIONS), value=v["precision"], description="precision",
                                    style=style, layout=wide),
            "optimizer": w.Dropdown(options=list(OPTIMIZERS), value=v["optimizer"], description="optimizer",
                                    style=style, layout=wide),
            "checkpointing": w.Checkbox(value=v["checkpointing"], description="gradient checkpointing",
                                        style=style),
        }
        self.output = w.HTML()
        self.estimate = None
        self.error = ""
        self.figure_text = ""
        self._hold = False
        from coursekit.archs import resolve_arch

        for name in _model_choices()[1:]:  # shapes of every preset now (~0.5 s), so each change redraws at once
            resolve_arch(name)
        if v["model"] != CUSTOM:
            self._sync_slider_to_model()
        self.widget = w.VBox([w.VBox(list(self.controls.values())), self.output])
        for key, c in self.controls.items():
            c.observe(self._changed_slider if key == "parameters_b" else
                      self._changed_model if key == "model" else self._changed, names="value")
        self.update()

    # ------------------------------------------------------------------ state

    def values(self) -> dict:
        return {k: c.value for k, c in self.controls.items()}

    def arch(self):
        """The architecture priced now: the chosen preset, or a Llama-3-shaped model of the slider's size."""
        return self.arch_for(self.values())

    @staticmethod
    def arch_for(v: dict):
        from coursekit.archs import resolve_arch
        from coursekit.archs.scaled import llama_shaped

        if v["model"] == CUSTOM:
            return llama_shaped(float(v["parameters_b"]) * 1e9)
        return resolve_arch(v["model"])

    def set(self, **values):
        """Change controls from code (as a learner would); returns the new estimate (None if it was rejected)."""
        unknown = [k for k in values if k not in self.controls]
        if unknown:
            raise ValueError(f"unknown setting(s) {unknown}; the calculator has: {', '.join(self.controls)}")
        if "model" in values and "parameters_b" in values and values["model"] != CUSTOM:
            raise ValueError("give either model=<preset> or parameters_b=<billions>, not both")
        _check({**self.values(), **values, **({"model": CUSTOM} if "parameters_b" in values else {})})
        self._hold = True
        try:
            for k, val in values.items():
                self.controls[k].value = val
            if "parameters_b" in values:
                self.controls["model"].value = CUSTOM
            elif "model" in values and values["model"] != CUSTOM:
                self._sync_slider_to_model()
        finally:
            self._hold = False
        return self.update()

    def _sync_slider_to_model(self) -> None:
        from coursekit.archs import resolve_arch

        billions = resolve_arch(self.controls["model"].value).total_parameters / 1e9
        self.controls["parameters_b"].value = min(MAX_BILLIONS, max(MIN_BILLIONS, billions))

    def _changed(self, change) -> None:
        if not self._hold:
            self.update()

    def _changed_slider(self, change) -> None:  # dragging the size means a custom-size model
        if self._hold:
            return
        self._hold = True
        try:
            self.controls["model"].value = CUSTOM
        finally:
            self._hold = False
        self.update()

    def _changed_model(self, change) -> None:  # a preset moves the slider to its size (without leaving the preset)
        if self._hold:
            return
        if change["new"] != CUSTOM:
            self._hold = True
            try:
                self._sync_slider_to_model()
            finally:
                self._hold = False
        self.update()

    # ------------------------------------------------------------------ the estimate and the picture

    def update(self):
        """Re-estimate with the current controls and redraw the panel; returns the estimate.

        The panel is rebuilt from one reading of the controls, and its caption names every setting it priced (the
        size in the slider readout's digits), so a figure can always be checked against the controls.
        """
        v = self.values()
        lora = v["method"] != "full"
        self.controls["rank"].disabled = self.controls["targets"].disabled = not lora
        try:
            arch = self.arch_for(v)
            self.estimate = estimate_memory(
                arch, v["method"], precision=v["precision"], optimizer=v["optimizer"], rank=v["rank"],
                targets=v["targets"], batch_size=v["batch_size"], seq_len=v["seq_len"],
                checkpointing=v["checkpointing"])
            self.error = ""
            if v["model"] == CUSTOM:
                size, source = float(v["parameters_b"]), "the size slider: a Llama-3-shaped model"
            else:
                size, source = arch.total_parameters / 1e9, ""
                if not MIN_BILLIONS <= size <= MAX_BILLIONS:
                    source = f"outside the slider's {MIN_BILLIONS:g}-{MAX_BILLIONS:,g} billion range"
            self.figure_text = total_text(self.estimate.total_bytes)
            self.output.value = render_html(self.estimate, size_billions=size, source=source)
        except Exception as exc:  # shown in the panel: never leave the previous settings' figure standing
            self.estimate = None
            self.error = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
            self.figure_text = ""
            self.output.value = f"<p style='color:#b00'><b>Cannot estimate:</b> {html.escape(self.error)}</p>"
            if not isinstance(exc, ValueError):
                raise
        return self.estimate

    @property
    def total_bytes(self) -> int | None:
        return None if self.estimate is None else self.estimate.total_bytes

    def _ipython_display_(self):  # pragma: no cover - needs a front end
        from IPython.display import display

        display(self.widget)


def total_text(total_bytes: int) -> str:
    """The figure the calculator shows: the peak in GB (1e9 bytes) and GiB (2^30 bytes)."""
    return f"Total (peak): {total_bytes / GB:,.2f} GB = {total_bytes / GIB:,.2f} GiB"


def size_text(billions: float) -> str:
    """A size in billions of parameters to three significant digits, as the size slider's readout shows it."""
    positive_number("billions", billions)
    return f"{float(f'{billions:.3g}'):,g}"


def _gpu_lines():
    return [gpu_spec(name) for name in GPU_LINES]


def render_svg(est, width: int = 640, bar_height: int = 34) -> str:
    """A horizontal bar stacked by component, with a dashed line at each drawn GPU's capacity (bytes against bytes;
    the labels give the capacity in GiB)."""
    lines_gpus = _gpu_lines()
    scale_bytes = max(est.sum_of_components_bytes, est.total_bytes, max(g.capacity_bytes for g in lines_gpus)) * 1.08
    x = 0.0
    rects = []
    for name in COMPONENTS:
        b = getattr(est, name)
        if b <= 0:
            continue
        wpx = b / scale_bytes * width
        rects.append(f"<rect x='{x:.1f}' y='22' width='{max(wpx, 0.5):.1f}' height='{bar_height}' "
                     f"fill='{COLOURS[name]}'><title>{name}: {b / GIB:,.2f} GiB = {b / GB:,.2f} GB</title></rect>")
        x += wpx
    peak_x = est.total_bytes / scale_bytes * width
    lines = []
    for i, g in enumerate(lines_gpus):
        gx = g.capacity_bytes / scale_bytes * width
        colour = "#1a7f37" if est.total_bytes <= g.capacity_bytes else "#b00"
        lines.append(f"<line x1='{gx:.1f}' x2='{gx:.1f}' y1='14' y2='{30 + bar_height}' stroke='{colour}' "
                     f"stroke-dasharray='4 3'/><text x='{min(max(gx, 50), width - 50):.1f}' "
                     f"y='{42 + bar_height + 11 * (i % 2)}' font-size='10' text-anchor='middle' "
                     f"fill='{colour}'>{html.escape(f'{g.name}: {g.gib:.1f} GiB')}</text>")
    peak = (f"<line x1='{peak_x:.1f}' x2='{peak_x:.1f}' y1='16' y2='{28 + bar_height}' stroke='#000' "
            f"stroke-width='2'/><text x='{min(peak_x, width - 60):.1f}' y='12' font-size='10'>peak</text>")
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{70 + bar_height}' "
            f"style='font-family:sans-serif'>{''.join(rects)}{peak}{''.join(lines)}</svg>")


def render_html(est, size_billions: float | None = None, source: str = "") -> str:
    """The panel: the total in GB and GiB, a caption naming every setting priced, the bar, the component table and
    which GPUs it fits. ``size_billions`` is the size the caption states (default: the estimate's parameters);
    ``source`` says where it came from (the size slider)."""
    e = html.escape
    rows = "".join(
        f"<tr><td><span style='color:{COLOURS[n]}'>&#9632;</span> {e(n)}</td>"
        f"<td style='text-align:right'>{getattr(est, n) / GB:,.2f}</td>"
        f"<td style='text-align:right'>{getattr(est, n) / GIB:,.2f}</td></tr>" for n in COMPONENTS)
    fits = [g.label for g in _gpu_lines() if est.total_bytes <= g.capacity_bytes]
    smallest = next((g for g in sorted(GPU_TABLE, key=lambda g: g.mib) if est.total_bytes <= g.capacity_bytes), None)
    verdict = (f"fits on: {', '.join(fits)}" if fits else "fits on none of the GPUs drawn")
    verdict += (f"; the smallest listed GPU that holds it: {smallest.label}" if smallest else
                "; no single listed GPU holds it")
    size = est.total_parameters / 1e9 if size_billions is None else size_billions
    run = (f"{est.method}, {est.precision}, {est.optimizer_name}, batch {est.batch_size} × seq {est.seq_len}, "
           f"checkpointing {'on' if est.checkpointing else 'off'}")
    return (
        f"<div class='coursekit-memory-total' style='font-size:1.3em;font-weight:bold;margin:.3em 0'>"
        f"{e(total_text(est.total_bytes))}</div>"
        f"<div class='coursekit-memory-caption'>Priced for <b><span class='coursekit-memory-size'>"
        f"{e(size_text(size))}</span> billion parameters</b>{f' ({e(source)})' if source else ''}: "
        f"<span class='coursekit-memory-arch'>{e(est.arch)}</span>, {est.total_parameters:,} parameters, "
        f"{est.trainable_parameters:,} trainable; {e(run)}; peak during the {e(est.peak_phase)}; {e(verdict)}</div>"
        f"{render_svg(est)}"
        "<table><tr><th>component</th><th>GB (1e9 B)</th><th>GiB (2^30 B)</th></tr>"
        f"{rows}<tr><td><b>total (peak)</b></td><td style='text-align:right'><b>{est.total_bytes / GB:,.2f}</b></td>"
        f"<td style='text-align:right'><b>{est.total_bytes / GIB:,.2f}</b></td></tr></table>"
        "<small>The peak is not the plain sum: gradients of full fine-tuning are written while activations are "
        "freed. Overhead is a CUDA context (stated, not measured). GPU capacities are the totals nvidia-smi reports "
        "(binary: an '80GB' card holds 80 GiB), compared with the estimate in bytes. From "
        "coursekit.memory.estimate_memory and coursekit.memory.hardware.GPU_TABLE.</small>")


def memory_calculator(**values) -> MemoryCalculator:
    """The interactive memory calculator, pre-set with ``values`` (keys of ``DEFAULTS``)."""
    return MemoryCalculator(**values)


__all__ = ["CUSTOM", "DEFAULTS", "GPU_LINES", "MemoryCalculator", "memory_calculator", "render_html", "render_svg",
           "size_text", "total_text"]
