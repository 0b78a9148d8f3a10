"""The decision-framework widget, driven headless: the same answers as recommend_method, shown in the panel."""
import pytest

from coursekit.recommend import QUESTIONS, recommend_method  # noqa: E402
from coursekit.widgets.decision import RUN_SETTINGS, decision_widget  # noqa: E402

READY = dict(num_examples=5000, goal="format", prompting_exhausted=True, model="smollm2-135m", gpu="T4")


def test_one_control_per_question_and_run_setting():
    w = decision_widget(model="smollm2-135m")
    assert list(w.controls)[: len(QUESTIONS)] == [q.key for q in QUESTIONS]
    assert set(RUN_SETTINGS) <= set(w.controls)
    assert w.controls["goal"].value == "style"
    assert "RTX 4090" in w.controls["gpu"].options


def test_defaults_answer_like_the_function():
    w = decision_widget(model="smollm2-135m")
    expected = recommend_method(model="smollm2-135m")
    assert (w.recommendation.approach, w.recommendation.method) == (expected.approach, expected.method)
    assert "Recommendation: prompting" in w.output.value  # nothing answered yet: more data, try prompting


def test_answering_changes_the_recommendation_and_the_panel():
    w = decision_widget(**READY)
    assert w.recommendation.approach == "fine-tune" and w.recommendation.method == "lora"
    assert "fine-tune with <code>lora</code>" in w.output.value
    assert w.recommendation.to_dict() == recommend_method(**READY).to_dict()
    w.set(goal="facts")
    assert w.recommendation.approach == "rag" and "Recommendation: rag" in w.output.value
    w.set(goal="format", few_shot_works=True)
    assert w.recommendation.approach == "prompting"
    w.controls["few_shot_works"].value = False  # a click: the observer re-runs the function
    assert w.recommendation.approach == "fine-tune"


def test_the_panel_shows_the_estimators_memory_table():
    w = decision_widget(**READY, seq_len=2048)
    rec = w.recommendation
    assert rec.memory_bytes == recommend_method(**READY, seq_len=2048).memory_bytes
    for m, b in rec.memory_bytes.items():  # GiB, the GPU's unit, then GB, both labelled in the header
        assert (f"<td>{m}</td><td style='text-align:right'>{b / 2**30:,.1f}</td>"
                f"<td style='text-align:right'>{b / 1e9:,.1f}</td>") in w.output.value
    assert "<th>GiB (2^30 B)</th><th>GB (1e9 B)</th>" in w.output.value
    assert "on one T4 (15.0 GiB)" in w.output.value  # 15,360 MiB, as nvidia-smi reports a T4
    assert "2048 tokens" in w.output.value
    assert "The path through the questions" in w.output.value


@pytest.mark.parametrize("answers, message", [
    ({"colour": "red"}, "unknown answer"),
    ({"goal": "vibes"}, "goal must be one of"),
    ({"num_examples": -5}, "non-negative"),
    ({"few_shot_works": "no"}, "True or False"),
    ({"seq_len": 777}, "seq_len must be one of"),
])
def test_bad_answers_are_refused(answers, message):
    with pytest.raises(ValueError, match=message):
        decision_widget(**answers)
    w = decision_widget(model="smollm2-135m")
    with pytest.raises(ValueError, match=message):
        w.set(**answers)
