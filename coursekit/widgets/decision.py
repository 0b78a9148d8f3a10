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

from coursekit.recommend import GOALS, QUESTIONS, RUN_FIELDS, Answers, question_choices, recommend_method
from coursekit.units import GB, GIB  # the table: GiB, as GPU memory is reported, and GB

#: Run settings the widget offers besides the framework's questions (the fields of Answers with widget choices):
#: name -> (label, choices, default).
RUN_SETTINGS = {name: spec for name, spec in RUN_FIELDS.items() if spec[1]}


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


def _question_row(number: int, q, control):
    import ipywidgets as w

    label = w.HTML(f"<b>{number}.</b> {html.escape(q.text)}"
                   + (f"<br><small>{html.escape(q.help)}</small>" if q.help else ""))
    return w.VBox([label, control])


def _run_control(label: str, options, value):
    import ipywidgets as w

    return w.Dropdown(options=list(options), value=value, description=label,
                      style={"description_width": "initial"}, layout=w.Layout(width="auto"))


class DecisionWidget:
    """The controls, the panel, and the latest :class:`~coursekit.recommend.Recommendation`.

    One control per question of :class:`~coursekit.recommend.Answers` and per run setting it offers choices for."""

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
        self.controls = {q.key: _control(q, values[q.key]) for q in QUESTIONS}
        self.controls.update({key: _run_control(label, options, values[key])
                              for key, (label, options, _) in RUN_SETTINGS.items()})
        rows = [_question_row(i, q, self.controls[q.key]) for i, q in enumerate(QUESTIONS, 1)]
        rows.append(w.HTML("<b>The training run the memory estimator prices</b>"))
        rows.append(w.HBox([self.controls[key] for key in RUN_SETTINGS]))
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
        """The widget's own limits (its dropdowns' choices), then what :class:`Answers` checks."""
        for q in QUESTIONS:
            if q.kind == "choice" and values[q.key] not in question_choices(q):
                raise ValueError(f"{q.key} must be one of {', '.join(map(str, question_choices(q)))}; "
                                 f"got {values[q.key]!r}")
        for key, (_, options, _) in RUN_SETTINGS.items():
            if values[key] not in options:
                raise ValueError(f"{key} must be one of {', '.join(map(str, options))} in the widget; got "
                                 f"{values[key]!r} (recommend_method itself takes any positive integer)")
        Answers(**values)

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
