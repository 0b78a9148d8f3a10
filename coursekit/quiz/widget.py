"""The in-notebook quiz: one block per question, a Check button, instant feedback and a score."""
from __future__ import annotations

import html

from coursekit.quiz.session import QuizSession


def _feedback_html(result) -> str:
    colour = {"correct": "#1a7f37", "close": "#9a6700", "wrong": "#cf222e", "invalid": "#9a6700"}[result.status]
    parts = [f"<b style='color:{colour}'>{result.status}</b>: {html.escape(result.message)}"]
    if result.explanation:
        parts.append(f"<br><i>{html.escape(result.explanation)}</i>")
    return "".join(parts)


def quiz_widget(lesson, max_tries: int = 2):
    """An ipywidgets quiz for ``lesson`` ("01"..."06"); ``widget.session`` holds the answers and the score."""
    import ipywidgets as w

    session = QuizSession(lesson, max_tries=max_tries)
    score = w.HTML(f"<b>Score:</b> {session.summary()}")
    blocks = [w.HTML(f"<h3>Quiz {session.bank.lesson}: {html.escape(session.bank.title)}</h3>")]
    for number, q in enumerate(session.bank.questions, start=1):
        title = w.HTMLMath(f"<b>Q{number}.</b> {html.escape(q.text())}")
        if q.kind == "choice":
            inputs = {None: w.RadioButtons(options=[(f"{k}) {v}", k) for k, v in q.options.items()], value=None,
                                           layout=w.Layout(width="auto"))}
        elif q.kind == "numeric":
            inputs = {None: w.FloatText(description=q.unit or "answer")}
        else:
            inputs = {}
            for f in q.fields:
                if f.kind == "choice":
                    inputs[f.name] = w.Dropdown(options=[(v, k) for k, v in f.options.items()], value=None,
                                                description=f.label, style={"description_width": "initial"})
                else:
                    inputs[f.name] = w.FloatText(description=f.label, style={"description_width": "initial"})
        button = w.Button(description="Check", button_style="primary")
        out = w.HTML()

        def on_click(_btn, q=q, inputs=inputs, out=out, button=button):
            value = inputs[None].value if None in inputs else {k: v.value for k, v in inputs.items()}
            result = session.answer(q.id, value)
            out.value = _feedback_html(result)
            if result.correct or session.tries.get(q.id, 0) >= session.max_tries:
                button.disabled = True
            score.value = f"<b>Score:</b> {session.summary()}"

        button.on_click(on_click)
        blocks.append(w.VBox([title, *inputs.values(), w.HBox([button]), out]))
    box = w.VBox(blocks + [score])
    box.session = session
    return box
