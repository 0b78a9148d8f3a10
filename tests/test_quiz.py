"""Question banks, quiz grading, the widget's logic, the course builder and the CLI (fast: no kernels)."""
from __future__ import annotations

import copy
import json

import pytest
import yaml

from coursekit import grading
from coursekit.lessons import PRACTICE_LESSONS as LESSONS
from coursekit.quiz import QuizSession, grade, load_bank, quiz_dir, safe_eval, seal_document
from coursekit.quiz.bank import parse_bank, read_yaml
from coursekit.quiz.nbgrader_course import (
    CELL_TIMEOUT_S,
    build_course,
    hidden_checks,
    solution_value,
    var_name,
)


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_bank_loads_with_eight_questions_and_explanations(lesson):
    bank = load_bank(lesson)
    assert bank.lesson == lesson and len(bank.questions) >= 8
    for q in bank.questions:
        assert q.explanation_text(), q.id
        assert "{" not in q.text(), q.id


def test_quoted_quiz_and_study_prompts_are_gradeable():
    sources = " ".join(q.source for ls in LESSONS for q in load_bank(ls).questions)
    for n in range(1, 6):
        assert f"common tutorial quiz Q{n}" in sources
    for n in range(1, 4):
        assert f"common tutorial study prompt {n}" in sources
    plan = load_bank("06")["support_plan"]
    assert plan.kind == "config" and {f.name for f in plan.fields} >= {"method", "target_modules", "rank",
                                                                      "lora_alpha", "lora_dropout", "evaluation"}


def test_no_plain_answer_key_in_the_committed_banks():
    for path in sorted(quiz_dir().glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        for q in data["questions"]:
            assert "answer" not in q, (path.name, q["id"])
            if q["kind"] != "numeric":
                assert "explanation" not in q and "explanation_sealed" in q, (path.name, q["id"])
            for rule in (q.get("fields") or {}).values():
                assert "answer" not in rule


def test_adam_walkthrough_numbers():
    bank = load_bank("02")
    assert [bank[i].expected() for i in ("adam_weights_gb", "adam_grads_gb", "adam_m_gb", "adam_v_gb",
                                         "adam_total_gb")] == [16.0, 16.0, 32.0, 32.0, 96.0]
    assert bank["estimator_gib"].expected() == pytest.approx(7e9 * 14 / 2 ** 30)


def test_grade_choice_numeric_and_config():
    bank = load_bank("06")
    q1 = bank["peft_advantage"]
    key = q1.correct_key()
    assert grade(q1, key).correct and grade(q1, key.upper()).correct
    assert grade(q1, next(k for k in q1.options if k != key)).status == "wrong"
    assert grade(q1, 3).status == "invalid"
    num = bank["adapter_params"]
    assert grade(num, 528_448).correct and grade(num, 528_128).status == "wrong"  # the quoted figure
    plan = bank["support_plan"]
    good = solution_value(plan)
    assert grade(plan, good).correct
    assert grade(plan, {**good, "method": "a"}).status == "wrong"
    bad_alpha = grade(plan, {**good, "rank": 8, "lora_alpha": 100})
    assert bad_alpha.status == "wrong" and "lora_alpha" in bad_alpha.message
    assert grade(plan, {k: v for k, v in good.items() if k != "rank"}).status == "invalid"
    assert grade(plan, [1, 2]).status == "invalid"


# (lesson, id, words the explanation must teach): questions that need reasoning rather than a formula
REASONING = [("02", "seq_vs_vocab_memory", ("logits", "SDPA", "optimizer state")),
             ("03", "val_loss_hides_forgetting", ("distribution", "probe", "overfitting")),
             ("04", "rank_doubled_fixed_alpha", ("lora_alpha / r", "sqrt(r)", "5.66")),
             ("05", "paging_cannot_fit", ("unified memory", "optimizer", "QLoRA"))]


@pytest.mark.parametrize("lesson, qid, words", REASONING)
def test_reasoning_questions_grade_the_key_right_and_every_distractor_wrong(lesson, qid, words):
    q = load_bank(lesson)[qid]
    key = q.correct_key()
    assert q.kind == "choice" and len(q.options) == 4 and key is not None
    assert grade(q, key).correct
    for other in q.options:
        if other != key:
            assert grade(q, other).status == "wrong", other
    explanation = q.explanation_text()
    for word in words:
        assert word in explanation, word


def test_rank_question_matches_peft_scaling():
    import torch
    from peft import LoraConfig, get_peft_model

    def scaling(r, rslora):
        model = torch.nn.Sequential(torch.nn.Linear(64, 64))
        cfg = LoraConfig(r=r, lora_alpha=32, target_modules=["0"], use_rslora=rslora)
        return get_peft_model(model, cfg).base_model.model[0].scaling["default"]

    assert (scaling(16, False), scaling(32, False)) == (2.0, 1.0)
    assert scaling(16, True) == 8.0 and scaling(32, True) == pytest.approx(5.66, abs=0.005)
    text = load_bank("04")["rank_doubled_fixed_alpha"].explanation_text()
    assert "lora_alpha / r" in text and "lora_alpha / sqrt(r)" in text


def test_format_question_expects_constrained_decoding():
    q = load_bank("01")["strict_format"]
    key = q.correct_key()
    assert "JSON schema" in q.options[key] and "grammar" in q.options[key]
    fine_tune = next(k for k, text in q.options.items() if text.startswith("Fine-tune"))
    assert grade(q, fine_tune).status == "wrong"
    assert "cannot" in q.explanation_text()  # what constrained decoding does not fix


def test_support_plan_accepts_reasoned_alphas_and_names_its_full_fine_tuning():
    plan = load_bank("06")["support_plan"]
    good = solution_value(plan)
    assert (good["rank"], good["lora_alpha"], good["lora_dropout"]) == (16, 32, 0.05)  # the bank's examples
    for rank, alpha in [(64, 16), (16, 16), (16, 32), (8, 32), (128, 256), (2, 1)]:  # r/4 .. 4r, e.g. QLoRA's
        assert grade(plan, {**good, "rank": rank, "lora_alpha": alpha}).correct, (rank, alpha)
        assert _run_checks(plan, {**good, "rank": rank, "lora_alpha": alpha}), (rank, alpha)
    for rank, alpha in [(8, 100), (64, 8), (512, 512)]:
        assert grade(plan, {**good, "rank": rank, "lora_alpha": alpha}).status == "wrong", (rank, alpha)
        assert not _run_checks(plan, {**good, "rank": rank, "lora_alpha": alpha}), (rank, alpha)
    method = next(f for f in plan.fields if f.name == "method")
    assert "fp32" in method.options["a"] and "8-bit" in plan.explanation_text()


def test_range_example_must_lie_within_its_bounds():
    data = {"lesson": "06", "title": "t", "salt": "s", "questions": [
        {"id": "plan", "kind": "config", "prompt": "p", "explanation": "e", "fields": {
            "rank": {"kind": "range", "min": 1, "max": 256, "integer": True, "example": 16},
            "lora_alpha": {"kind": "range", "min": "rank / 4", "max": "4 * rank", "example": 32}}}]}
    assert solution_value(parse_bank(data, "d.yaml")["plan"]) == {"rank": 16, "lora_alpha": 32}
    for field, value, what in [("lora_alpha", 100, "outside"), ("rank", 2.5, "whole number"),
                               ("rank", "16", "must be a number")]:
        bad = copy.deepcopy(data)
        bad["questions"][0]["fields"][field]["example"] = value
        with pytest.raises(ValueError, match=f"question plan.fields.{field}, field 'example'.*{what}"):
            parse_bank(bad, "d.yaml")


def test_session_scores_and_locks():
    s = QuizSession("03", max_tries=2)
    q = s.bank["all_params"]
    wrong = next(k for k in q.options if k != q.correct_key())
    r = s.answer(q.id, wrong)
    assert r.status == "wrong" and not r.explanation and s.score == 0
    assert s.answer(q.id, "nonsense").status == "invalid" and s.tries[q.id] == 1  # no try used up
    r = s.answer(q.id, wrong)
    assert r.explanation  # revealed after the last try
    assert s.answer(q.id, q.correct_key()).status == "wrong"  # locked after max_tries
    r = s.answer("effective_batch", 16)
    n = len(s.bank.questions)
    assert r.correct and s.score == 1 and s.max_score == n
    assert f"1 / {n} points" in s.summary()
    with pytest.raises(ValueError, match="no question"):
        s.answer("nope", 1)
    with pytest.raises(ValueError, match="max_tries"):
        QuizSession("03", max_tries=0)


def test_widget_builds_and_scores_headlessly():
    from coursekit.quiz import quiz_widget

    box = quiz_widget("04")
    session = box.session
    blocks = box.children[1:-1]
    assert len(blocks) == len(session.bank.questions)
    first = session.bank.questions[0]
    radio, button = blocks[0].children[1], blocks[0].children[2].children[0]
    radio.value = first.correct_key()
    button.click()
    assert session.results[first.id].correct and button.disabled
    assert f"1 / {len(session.bank.questions)}" in box.children[-1].value


def _draft():
    return {"lesson": "02", "title": "t", "salt": "s", "questions": [
        {"id": "q1", "kind": "choice", "prompt": "p", "options": {"a": "x", "b": "y"}, "answer": "b",
         "explanation": "because"},
        {"id": "q2", "kind": "numeric", "prompt": "{n} things", "params": {"n": 3}, "answer_expr": "2 * n",
         "explanation": "two each"}]}


def test_seal_round_trip():
    sealed = seal_document(_draft(), "draft.yaml")
    q = sealed["questions"][0]
    assert "answer" not in q and "explanation" not in q
    assert q["answer_sha256"] == grading.choice_digest("quiz.02.q1", "b", "s")
    bank = parse_bank(sealed, "sealed.yaml")
    assert bank["q1"].explanation_text() == "because" and bank["q2"].expected() == 6


@pytest.mark.parametrize("mutate, where", [
    (lambda d: d["questions"][0].pop("prompt"), "draft.yaml, question q1, field 'prompt'"),
    (lambda d: d["questions"][0].update(kind="essay"), "question q1, field 'kind'"),
    (lambda d: d["questions"][0].update(answer="c"), "question q1, field 'answer'"),
    (lambda d: d["questions"][1].update(answer_expr="__import__('os')"), "question q2, field 'answer_expr'"),
    (lambda d: d["questions"][1].update(answer_expr="m * 2"), "question q2, field 'answer_expr'"),
    (lambda d: d["questions"][1].update(params={"n": "8.0e9"}), "question q2, field 'params'"),
    (lambda d: d["questions"][1].update(id="q1"), "question q1, field 'id'"),
    (lambda d: d["questions"][1].update(points=-1), "question q2, field 'points'"),
    (lambda d: d["questions"][1].pop("explanation"), "question q2, field 'explanation'"),
    (lambda d: d.update(lesson="09"), "draft.yaml, field 'lesson'"),
    (lambda d: d.update(questions=[]), "field 'questions'"),
    (lambda d: d["questions"][0].update(options={"a": "x", "b, c": None}), "question q1, field 'options'"),
])
def test_malformed_bank_names_file_question_and_field(mutate, where):
    data = copy.deepcopy(_draft())
    mutate(data)
    with pytest.raises(ValueError) as info:
        parse_bank(data, "draft.yaml")
    assert where in str(info.value)


def test_tampered_hash_is_reported(tmp_path):
    sealed = seal_document(_draft(), "d.yaml")
    sealed["questions"][0]["answer_sha256"] = "0" * 64
    path = tmp_path / "02_bad.yaml"
    path.write_text(yaml.safe_dump(sealed))
    with pytest.raises(ValueError, match="02_bad.yaml, question q1, field 'answer_sha256'"):
        load_bank(path)
    path.write_text("lesson: [unclosed")
    with pytest.raises(ValueError, match="02_bad.yaml: not valid YAML"):
        read_yaml(path)


def test_safe_eval_allows_arithmetic_only():
    assert safe_eval("ceil(x / 3) * 2 ** 3", {"x": 10}) == 32
    for bad in ("x.__class__", "open('f')", "[i for i in y]", "lambda: 1", "x if x else 1"):
        with pytest.raises(ValueError):
            safe_eval(bad, {"x": 1, "y": [1]})


def test_build_course_writes_schema3_assignments(tmp_path):
    paths = build_course(tmp_path, lessons=["01", "06"])
    assert [p.name for p in paths] == ["quiz01.ipynb", "quiz06.ipynb"]
    config = (tmp_path / "nbgrader_config.py").read_text()
    assert f"c.Execute.timeout = {CELL_TIMEOUT_S}" in config and "LimitOutput.max_lines" in config
    nb = json.loads(paths[1].read_text())
    kinds = {"solution": 0, "tests": 0, "locked": 0}
    total_points = 0
    for cell in nb["cells"]:
        meta = cell["metadata"]["nbgrader"]
        assert meta["schema_version"] == 3 and cell["id"]
        if meta["solution"]:
            kinds["solution"] += 1
            assert "### BEGIN SOLUTION" in cell["source"]
        elif meta["grade"]:
            kinds["tests"] += 1
            total_points += meta["points"]
            assert "### BEGIN HIDDEN TESTS" in cell["source"] and meta["locked"]
        else:
            kinds["locked"] += 1
    assert kinds == {"solution": 8, "tests": 8, "locked": 9} and total_points == 8
    with pytest.raises(ValueError, match="lessons must be among"):
        build_course(tmp_path, lessons=["07"])
    with pytest.raises(ValueError, match="timeout_s"):
        build_course(tmp_path, timeout_s=0)


_CODE: dict = {}


def _run_checks(q, value):
    """Execute a question's hidden test lines against ``value``; True when they pass."""
    if q.id not in _CODE:
        _CODE[q.id] = compile("\n".join(hidden_checks(q)), q.id, "exec")
    ns = {var_name(q): value}
    try:
        exec(_CODE[q.id], ns)  # noqa: S102 - test of generated test code
    except AssertionError:
        return False
    return True


def test_hidden_checks_hold_against_look_alikes_and_patched_builtins():
    import builtins

    bank = load_bank("06")
    choice, number, plan = bank["method_fits_gpu"], bank["adapter_params"], bank["support_plan"]
    assert _run_checks(choice, solution_value(choice)) and _run_checks(number, 528448)
    assert _run_checks(plan, solution_value(plan))

    class Eq(str):
        def __eq__(self, other):
            return True

        __hash__ = str.__hash__

        def lower(self):
            return self

    class Num(float):
        def __sub__(self, other):
            return 0.0

    assert not _run_checks(choice, Eq("z"))
    assert not _run_checks(number, Num(1.0))
    assert not _run_checks(number, True)
    assert not _run_checks(number, float("nan"))
    assert not _run_checks(plan, dict(solution_value(plan), rank=True))
    real_type, real_isinstance = builtins.type, builtins.isinstance
    try:
        builtins.type = lambda *a: str
        builtins.isinstance = lambda *a: True
        assert not _run_checks(choice, Eq("z")) and not _run_checks(number, Num(1.0))
        assert _run_checks(number, 528448)
    finally:
        builtins.type, builtins.isinstance = real_type, real_isinstance


def test_cli_build_list_and_key(tmp_path, capsys):
    from coursekit.cli import main

    assert main(["quiz", "build", "--out", str(tmp_path / "c"), "--lessons", "02"]) == 0
    assert (tmp_path / "c" / "source" / "quiz02" / "quiz02.ipynb").is_file()
    assert main(["quiz", "list"]) == 0
    assert "06  Choosing a PEFT method" in capsys.readouterr().out
    assert main(["quiz", "key", "02"]) == 0
    assert "adam_total_gb                96 GB" in capsys.readouterr().out
    assert main(["quiz", "build", "--out", str(tmp_path / "d"), "--lessons", "9"]) == 2
    draft = tmp_path / "draft.yaml"
    draft.write_text(yaml.safe_dump(_draft()))
    assert main(["quiz", "seal", str(draft), "--out", str(tmp_path / "02_x.yaml")]) == 0
    assert load_bank(tmp_path / "02_x.yaml")["q1"].correct_key() == "b"
