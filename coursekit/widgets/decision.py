"""The decision framework of lesson 01 as an interactive widget: answer the questions, read the recommendation.

A thin front end over :func:`coursekit.recommend.recommend_method`: one control per entry of
``coursekit.recommend.QUESTIONS`` (plus the run's batch size, sequence length and LoRA rank, which the memory
estimator prices), and an HTML panel that shows the recommendation, the reasons, the path through the questions and
the memory table. Every change re-runs the function. It works headless too, which is how it is tested::

    w = decision_widget(num_examples=10_000, goal="format")
    w.set(prompting_exhausted=True, gpu="T4")
    w.recommendation.method         # the same answer recommend_method gives
    w                               # in a notebook: the controls and the panel
"""
from __future__ import annotations

import html

from coursekit.recommend import GOALS, QUESTIONS, question_choices, recommend_method

#: Run settings the widget offers besides the framework's questions: (label, choices, default).
RUN_SETTINGS = {
    "batch_size": ("micro-batch", (1, 2, 4, 8, 16), 1),
    "seq_len": ("sequence length (tokens)", (256, 512, 1024, 2048, 4096, 8192), 512),
    "rank": ("LoRA rank", (4, 8, 16, 32, 64), 16),
}
GB, GIB = 1e9, 2**30  # the memory table compares with the GPU in GiB (how GPU memory is reported), GB alongside


def _control(q, value):
    import ipywidgets as w

    layout = w.Layout(width="auto")
    style = {"description_width": "initial"}
    if q.kind == "bool":
        return w.ToggleButtons(options=[("yes", True), ("no", False)], value=value, style=style)
    if q.kind == "int":
        return w.BoundedIntText(value=value, min=0, max=10**9, step=500, layout=w.Layout(width="12em"))
    options = question_choices(q)
    if q.key == "goal":
        options = [(f"{k}: {GOALS[k]}", k) for k in options]
    if q.key == "gpu" and isinstance(value, (int, float)):
        value = str(value)
    return w.Dropdown(options=options, value=value, layout=layout, style=style)


class DecisionWidget:
    """The controls, the panel, and the latest :class:`~coursekit.recommend.Recommendation`."""

    def __init__(self, **answers) -> None:
        import ipywidgets as w

        known = [q.key for q in QUESTIONS] + list(RUN_SETTINGS)
        unknown = [k for k in answers if k not in known]
        if unknown:
            raise ValueError(f"unknown answer(s) {unknown}; the widget asks: {', '.join(known)}")
        values = {q.key: q.default for q in QUESTIONS}
        values.update({k: d for k, (_, _, d) in RUN_SETTINGS.items()})
        values.update(answers)
        self._check(values)
        self.controls = {}
        rows = []
        for i, q in enumerate(QUESTIONS, 1):
            c = _control(q, values[q.key])
            self.controls[q.key] = c
            label = w.HTML(f"<b>{i}.</b> {html.escape(q.text)}"
                           + (f"<br><small>{html.escape(q.help)}</small>" if q.help else ""))
            rows.append(w.VBox([label, c]))
        run = []
        for key, (label, options, _) in RUN_SETTINGS.items():
            c = w.Dropdown(options=list(options), value=values[key], description=label,
                           style={"description_width": "initial"}, layout=w.Layout(width="auto"))
            self.controls[key] = c
            run.append(c)
        rows.append(w.HTML("<b>The training run the memory estimator prices</b>"))
        rows.append(w.HBox(run))
        self.output = w.HTML()
        self.recommendation = None
        self.error = ""
        self.widget = w.HBox([w.VBox(rows, layout=w.Layout(width="55%")),
                              w.VBox([self.output], layout=w.Layout(width="45%", padding="0 0 0 1em"))])
        for c in self.controls.values():
            c.observe(self._changed, names="value")
        self.update()

    @staticmethod
    def _check(values: dict) -> None:
        for q in QUESTIONS:
            v = values[q.key]
            if q.kind == "bool" and not isinstance(v, bool):
                raise ValueError(f"{q.key} must be True or False, got {v!r}")
            if q.kind == "int" and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise ValueError(f"{q.key} must be a non-negative integer, got {v!r}")
            if q.kind == "choice" and v not in question_choices(q):
                raise ValueError(f"{q.key} must be one of {', '.join(map(str, question_choices(q)))}; got {v!r}")
        for key, (_, options, _) in RUN_SETTINGS.items():
            if values[key] not in options:
                raise ValueError(f"{key} must be one of {', '.join(map(str, options))} in the widget; got "
                                 f"{values[key]!r} (recommend_method itself takes any positive integer)")

    def answers(self) -> dict:
        return {k: c.value for k, c in self.controls.items()}

    def set(self, **answers):
        """Answer questions from code (as a learner would by clicking); returns the new recommendation."""
        unknown = [k for k in answers if k not in self.controls]
        if unknown:
            raise ValueError(f"unknown answer(s) {unknown}; the widget asks: {', '.join(self.controls)}")
        self._check({**self.answers(), **answers})
        self._hold = True
        try:
            for k, v in answers.items():
                self.controls[k].value = v
        finally:
            self._hold = False
        return self.update()

    def _changed(self, change) -> None:
        if not getattr(self, "_hold", False):
            self.update()

    def update(self):
        """Run ``recommend_method`` on the current answers and redraw the panel."""
        try:
            self.recommendation = recommend_method(**self.answers())
            self.error = ""
            self.output.value = render_html(self.recommendation)
        except ValueError as exc:  # shown in the panel instead of vanishing inside a callback
            self.recommendation = None
            self.error = str(exc)
            self.output.value = f"<p style='color:#b00'><b>Cannot recommend:</b> {html.escape(self.error)}</p>"
        return self.recommendation

    def _ipython_display_(self):  # pragma: no cover - needs a front end
        from IPython.display import display

        display(self.widget)


def render_html(rec) -> str:
    """A Recommendation as the widget's panel: headline, reasons, cautions, memory table, the questions' path."""
    e = html.escape
    colour = "#1a7f37" if rec.fine_tune and rec.method else "#0b5394" if not rec.fine_tune else "#b45f06"
    head = e(rec.approach) + (f" with <code>{e(rec.method)}</code>" if rec.method else "")
    parts = [f"<h3 style='color:{colour};margin:0 0 .4em 0'>Recommendation: {head}</h3>",
             "<ul>" + "".join(f"<li>{e(r)}</li>" for r in rec.reasons) + "</ul>"]
    if rec.cautions:
        parts.append("<b>Watch out</b><ul>" + "".join(f"<li>{e(c)}</li>" for c in rec.cautions) + "</ul>")
    from coursekit.memory.hardware import gpu_label

    rows = "".join(
        f"<tr><td>{e(m)}</td><td style='text-align:right'>{b / GIB:,.1f}</td>"
        f"<td style='text-align:right'>{b / GB:,.1f}</td>"
        f"<td style='color:{'#1a7f37' if rec.fits[m] else '#b00'}'>{'fits' if rec.fits[m] else 'does not fit'}</td>"
        f"<td>{e(gpu_label(rec.smallest_gpu[m]) if rec.smallest_gpu[m] else 'none listed')}</td></tr>"
        for m, b in rec.memory_bytes.items())
    parts.append(f"<b>Estimated training memory, {e(rec.model)} on one {e(rec.gpu)} "
                 f"({rec.gpu_capacity_bytes / GIB:,.1f} GiB)</b>"
                 "<table><tr><th>method</th><th>GiB (2^30 B)</th><th>GB (1e9 B)</th><th>this GPU</th>"
                 "<th>smallest GPU that fits</th></tr>"
                 f"{rows}</table><small>from coursekit.memory.estimate_memory; batch "
                 f"{rec.settings['batch_size']} x {rec.settings['seq_len']} tokens, rank {rec.settings['rank']}, "
                 "gradient checkpointing on</small>")
    parts.append("<details><summary>The path through the questions</summary><ol>" + "".join(
        f"<li>{e(t['question'])} <i>{e(str(t['answer']))}</i> &rarr; {e(str(t['outcome']))}</li>" for t in rec.trail)
        + "</ol></details>")
    return "\n".join(parts)


def decision_widget(**answers) -> DecisionWidget:
    """The interactive decision framework, pre-filled with ``answers`` (keyword names of ``recommend_method``)."""
    return DecisionWidget(**answers)


__all__ = ["DecisionWidget", "RUN_SETTINGS", "decision_widget", "render_html"]
