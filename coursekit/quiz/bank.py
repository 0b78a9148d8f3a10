"""Question banks: ``quizzes/NN_*.yaml``, one per lesson, loaded and checked field by field.

A bank::

    lesson: "02"
    title: Memory
    salt: quiz-02                    # salts the choice hashes of this file
    questions:
      - id: adam_weights_gb           # unique in the bank
        kind: numeric                 # choice | numeric | config
        prompt: "... {params:,.0f} parameters ..."
        params: {params: 8.0e9}
        answer_expr: params * 2 / 1e9 # computed at check time from params (see ``safe_eval``)
        rel_tol: 0.01
        unit: GB
        explanation: "..."
      - id: what_lora_does
        kind: choice
        options: {a: ..., b: ..., c: ...}
        answer_sha256: ...            # ``seal_bank`` turns a draft's ``answer: b`` into this
        explanation_sealed: ...       # ... and ``explanation:`` into this
      - id: support_plan
        kind: config
        fields:
          method: {kind: choice, options: {...}, answer_sha256: ...}
          rank: {kind: range, min: 1, max: 256, integer: true, example: 16}
          lora_alpha: {kind: range, min: rank / 4, max: 4 * rank, example: 32}   # bounds may name other fields

A range field's optional ``example`` is the value the instructor's solution shows (it must lie within the bounds);
without it the solution takes the middle of the range.

A malformed bank raises ``ValueError`` naming the file, the question and the field.
"""
from __future__ import annotations

import ast
import dataclasses
import math
import operator
import os
from pathlib import Path

from coursekit import grading
from coursekit.lessons import PRACTICE_LESSONS, check_lesson
from coursekit.validate import is_finite_number, is_number

KINDS = ("choice", "numeric", "config")
FIELD_KINDS = ("choice", "range")


def quiz_dir() -> Path:
    """Where the banks live: ``$COURSEKIT_QUIZ_DIR`` or the repository's ``quizzes/``."""
    env = os.environ.get("COURSEKIT_QUIZ_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "quizzes"


# --- safe arithmetic for answers computed from parameters -------------------------------------------------
def _count_parameters(arch):
    from coursekit.archs import count_parameters

    return count_parameters(arch)


def _count_lora_parameters(arch, rank=16, targets="all-linear"):
    from coursekit.archs import count_lora_parameters

    return count_lora_parameters(arch, rank=rank, targets=targets)


FUNCTIONS = {"ceil": math.ceil, "floor": math.floor, "min": min, "max": max, "abs": abs, "round": round,
             "sqrt": math.sqrt, "count_parameters": _count_parameters,
             "count_lora_parameters": _count_lora_parameters}
_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Pow: operator.pow, ast.Mod: operator.mod}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}


def safe_eval(expr: str, names: dict):
    """Evaluate arithmetic over ``names`` and ``FUNCTIONS`` (numbers, strings, + - * / // % **, calls); nothing else."""
    if not isinstance(expr, str):
        raise ValueError(f"expression must be a string, got {type(expr).__name__}")
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"expression {expr!r} is not valid: {exc.msg}") from None

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str)) and not isinstance(
                node.value, bool):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in names:
                return names[node.id]
            raise ValueError(f"expression {expr!r} uses unknown name {node.id!r}; known: "
                             f"{', '.join(sorted(names)) or 'none'}")
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](ev(node.operand))
        if isinstance(node, (ast.List, ast.Tuple)):
            return [ev(e) for e in node.elts]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS:
            return FUNCTIONS[node.func.id](*[ev(a) for a in node.args], **{k.arg: ev(k.value) for k in node.keywords})
        raise ValueError(f"expression {expr!r}: {type(node).__name__} is not allowed (only arithmetic, parameter "
                         f"names and {', '.join(FUNCTIONS)})")

    return ev(tree)


# --- the data model --------------------------------------------------------------------------------------
@dataclasses.dataclass
class Field:
    name: str
    kind: str
    options: dict | None = None
    answer_sha256: str | None = None
    min: object = None
    max: object = None
    integer: bool = False
    label: str = ""
    example: float | int | None = None


@dataclasses.dataclass
class Question:
    lesson: str
    id: str
    kind: str
    prompt: str
    salt: str
    points: float = 1.0
    source: str = ""
    options: dict | None = None
    answer_sha256: str | None = None
    explanation_sealed: str | None = None
    explanation: str | None = None
    params: dict = dataclasses.field(default_factory=dict)
    answer_expr: str | None = None
    rel_tol: float = 0.01
    abs_tol: float = 0.0
    unit: str = ""
    fields: list[Field] = dataclasses.field(default_factory=list)

    @property
    def scope(self) -> str:
        return f"quiz.{self.lesson}.{self.id}"

    def text(self) -> str:
        return self.prompt.format(**self.params) if self.params else self.prompt

    def expected(self) -> float:
        """The numeric answer, computed now from ``params``."""
        if self.kind != "numeric":
            raise ValueError(f"question {self.id!r} is a {self.kind} question, not numeric")
        return float(safe_eval(self.answer_expr, dict(self.params)))

    def correct_key(self) -> str | None:
        """The correct option of a choice question (found by trying each option against the hash)."""
        return grading.find_choice(self.scope, self.answer_sha256, self.options, self.salt)

    def field_key(self, f: Field) -> str | None:
        return grading.find_choice(f"{self.scope}.{f.name}", f.answer_sha256, f.options, self.salt)

    def seal_key(self) -> str:
        """The key an explanation is sealed with: the correct option(s)."""
        if self.kind == "choice":
            return self.correct_key() or ""
        return "|".join(self.field_key(f) or "" for f in self.fields if f.kind == "choice")

    def explanation_text(self) -> str:
        if self.explanation:
            return self.explanation.format(**self.params) if self.params else self.explanation
        if self.explanation_sealed:
            return grading.unseal(self.explanation_sealed, self.scope, self.seal_key(), self.salt) or ""
        return ""


@dataclasses.dataclass
class Bank:
    lesson: str
    title: str
    path: Path
    questions: list[Question]

    def __getitem__(self, qid: str) -> Question:
        for q in self.questions:
            if q.id == qid:
                return q
        raise ValueError(f"{self.path.name}: no question {qid!r}; known: {', '.join(q.id for q in self.questions)}")

    @property
    def max_points(self) -> float:
        return sum(q.points for q in self.questions)


class _Where:
    def __init__(self, path, qid=None):
        self.path, self.qid = path, qid

    def fail(self, field, what):
        where = f"{Path(self.path).name}"
        if self.qid is not None:
            where += f", question {self.qid}"
        raise ValueError(f"{where}, field {field!r}: {what}")


def _require(d: dict, key: str, where: _Where, types, what: str):
    if key not in d:
        where.fail(key, f"is missing ({what})")
    value = d[key]
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        where.fail(key, f"must be {what}, got {value!r}")
    if not isinstance(value, types):
        where.fail(key, f"must be {what}, got {type(value).__name__} {value!r:.40}")
    return value


def _options(d, where, key="options"):
    opts = _require(d, key, where, dict, "a mapping of option letter to text")
    if len(opts) < 2:
        where.fail(key, "needs at least two options")
    out = {}
    for k, v in opts.items():
        if not isinstance(k, str) or not (1 <= len(k) <= 3):
            where.fail(key, f"option key {k!r} must be a short label such as 'a' (a comma inside an unquoted "
                            f"option text splits it; quote the text)")
        if not isinstance(v, str) or not v.strip():
            where.fail(key, f"option {k!r} must be non-empty text")
        out[grading.normalize_choice(k)] = v
    return out


def _digest_field(d, where, scope, options, salt, key="answer_sha256"):
    if "answer" in d:  # a draft: plain answer, sealed by ``seal_bank`` before committing
        ans = grading.normalize_choice(d["answer"])
        if ans not in options:
            where.fail("answer", f"{d['answer']!r} is not one of the options {', '.join(options)}")
        return grading.choice_digest(scope, ans, salt)
    digest = _require(d, key, where, str, "a sha256 hex digest (or a draft's plain 'answer')")
    if grading.find_choice(scope, digest, options, salt) is None:
        where.fail(key, "matches none of the options (edited options or salt? re-seal the draft)")
    return digest


def _check_examples(q: Question, path) -> None:
    """Every range field's ``example`` lies within its bounds, evaluated at the other fields' examples."""
    names = {**q.params, **{f.name: f.example for f in q.fields if f.kind == "range" and f.example is not None}}
    for f in q.fields:
        if f.kind != "range" or f.example is None:
            continue
        for side, bound in (("min", f.min), ("max", f.max)):
            if bound is None:
                continue
            try:
                limit = float(safe_eval(str(bound), names))
            except ValueError:
                continue  # the bound names a field without an example
            if (side == "min" and f.example < limit) or (side == "max" and f.example > limit):
                _Where(path, f"{q.id}.fields.{f.name}").fail(
                    "example", f"{f.example!r} is outside the field's range ({side} {bound} = {limit:g})")


def _params(raw: dict, where: _Where) -> dict:
    """A question's ``params``: a mapping whose values are not numbers that YAML read as text."""
    params = raw.get("params", {}) or {}
    if not isinstance(params, dict):
        where.fail("params", f"must be a mapping of name to value, got {type(params).__name__}")
    for name, value in params.items():
        if isinstance(value, str):
            try:
                float(value)
            except ValueError:
                continue
            where.fail("params", f"{name}: {value!r} was read as text; YAML needs a sign in the exponent "
                                 f"(8.0e+9) or plain digits")
    return dict(params)


def _question_head(raw, index: int, path, lesson: str, salt: str, seen: set) -> tuple[Question, _Where]:
    """The fields every question has (id, kind, prompt, points, source, params), checked."""
    where = _Where(path, f"#{index}")
    if not isinstance(raw, dict):
        where.fail("(question)", f"must be a mapping, got {type(raw).__name__}")
    qid = _require(raw, "id", where, str, "an identifier")
    if not qid.isidentifier():
        where.fail("id", f"{qid!r} must be a Python identifier (letters, digits, underscore)")
    where = _Where(path, qid)
    if qid in seen:
        where.fail("id", "is used twice in this bank")
    seen.add(qid)
    kind = _require(raw, "kind", where, str, f"one of {', '.join(KINDS)}")
    if kind not in KINDS:
        where.fail("kind", f"must be one of {', '.join(KINDS)}, got {kind!r}")
    prompt = _require(raw, "prompt", where, str, "the question text")
    points = raw.get("points", 1)
    if not is_number(points) or points <= 0:
        where.fail("points", f"must be a positive number, got {points!r}")
    q = Question(lesson=lesson, id=qid, kind=kind, prompt=prompt, salt=salt, points=float(points),
                 source=str(raw.get("source", "")), params=_params(raw, where))
    try:
        q.text()
    except (KeyError, IndexError, ValueError) as exc:
        where.fail("prompt", f"cannot be filled from params ({', '.join(q.params) or 'none'}): {exc!r}")
    return q, where


def _parse_choice(q: Question, raw: dict, where: _Where) -> None:
    q.options = _options(raw, where)
    q.answer_sha256 = _digest_field(raw, where, q.scope, q.options, q.salt)


def _parse_numeric(q: Question, raw: dict, where: _Where) -> None:
    q.answer_expr = str(_require(raw, "answer_expr", where, (str, int, float), "an arithmetic expression over params"))
    for tol in ("rel_tol", "abs_tol"):
        if tol in raw:
            v = raw[tol]
            if not is_number(v) or v < 0:
                where.fail(tol, f"must be a number >= 0, got {v!r}")
            setattr(q, tol, float(v))
    q.unit = str(raw.get("unit", ""))
    try:
        value = q.expected()
    except (ValueError, ZeroDivisionError, TypeError) as exc:
        where.fail("answer_expr", str(exc))
    if not math.isfinite(value):
        where.fail("answer_expr", f"evaluates to {value!r}")


def _parse_range(f: Field, rule: dict, fwhere: _Where) -> None:
    if "min" not in rule and "max" not in rule:
        fwhere.fail("min", "a range needs min, max or both")
    f.min, f.max, f.integer = rule.get("min"), rule.get("max"), bool(rule.get("integer", False))
    if "example" in rule:
        ex = rule["example"]
        if not is_finite_number(ex):
            fwhere.fail("example", f"must be a number, got {ex!r}")
        if f.integer and ex != int(ex):
            fwhere.fail("example", f"must be a whole number (the field is integer), got {ex!r}")
        f.example = ex


def _parse_field(q: Question, name, rule, path, where: _Where) -> Field:
    fwhere = _Where(path, f"{q.id}.fields.{name}")
    if not isinstance(name, str) or not name.isidentifier():
        where.fail("fields", f"field name {name!r} must be an identifier")
    if not isinstance(rule, dict):
        fwhere.fail("(rule)", f"must be a mapping, got {type(rule).__name__}")
    fkind = _require(rule, "kind", fwhere, str, f"one of {', '.join(FIELD_KINDS)}")
    f = Field(name=name, kind=fkind, label=str(rule.get("label", name)))
    if fkind == "choice":
        f.options = _options(rule, fwhere)
        f.answer_sha256 = _digest_field(rule, fwhere, f"{q.scope}.{name}", f.options, q.salt)
    elif fkind == "range":
        _parse_range(f, rule, fwhere)
    else:
        fwhere.fail("kind", f"must be one of {', '.join(FIELD_KINDS)}, got {fkind!r}")
    return f


def _parse_config(q: Question, raw: dict, where: _Where, path) -> None:
    raw_fields = _require(raw, "fields", where, dict, "a mapping of field name to its rule")
    q.fields = [_parse_field(q, name, rule, path, where) for name, rule in raw_fields.items()]
    if not q.fields:
        where.fail("fields", "needs at least one field")
    _check_examples(q, path)


def _parse_explanation(q: Question, raw: dict, where: _Where) -> None:
    """A numeric question keeps its explanation as text; the others' is sealed with the correct answer."""
    if "explanation" in raw:
        text = raw["explanation"]
        if not isinstance(text, str):
            where.fail("explanation", "must be text")
        if q.kind == "numeric":
            q.explanation = text
        else:
            q.explanation_sealed = grading.seal(text, q.scope, q.seal_key(), q.salt)
    elif "explanation_sealed" in raw:
        q.explanation_sealed = _require(raw, "explanation_sealed", where, str, "sealed text")
        if q.kind != "numeric" and not q.explanation_text():
            where.fail("explanation_sealed", "does not open with the correct answer (re-seal the draft)")
    else:
        where.fail("explanation", "is missing (every question explains its answer)")


def parse_question(raw, index: int, path, lesson: str, salt: str, seen: set) -> Question:
    """One question of a bank, checked field by field (``index`` counts from 1; ``seen``: the ids so far)."""
    q, where = _question_head(raw, index, path, lesson, salt, seen)
    if q.kind == "choice":
        _parse_choice(q, raw, where)
    elif q.kind == "numeric":
        _parse_numeric(q, raw, where)
    else:
        _parse_config(q, raw, where, path)
    _parse_explanation(q, raw, where)
    return q


def parse_bank(data, path) -> Bank:
    """Check and convert a loaded YAML document (``path`` is only used in messages)."""
    top = _Where(path)
    if not isinstance(data, dict):
        top.fail("(top level)", f"must be a mapping with lesson, title, salt, questions; got {type(data).__name__}")
    lesson = str(_require(data, "lesson", top, (str, int), "the lesson number as a string like '02'")).zfill(2)
    if lesson not in PRACTICE_LESSONS:
        top.fail("lesson", f"must be one of {', '.join(PRACTICE_LESSONS)}, got {lesson!r}")
    title = _require(data, "title", top, str, "text")
    salt = _require(data, "salt", top, str, "text")
    raw_questions = _require(data, "questions", top, list, "a list of questions")
    seen: set = set()
    questions = [parse_question(raw, index, path, lesson, salt, seen) for index, raw in enumerate(raw_questions, 1)]
    if not questions:
        top.fail("questions", "is empty")
    return Bank(lesson=lesson, title=title, path=Path(path), questions=questions)


def read_yaml(path) -> object:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no question bank at {path}")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"{path.name}: not valid YAML: {exc}") from None


def bank_path(lesson) -> Path:
    lesson = check_lesson(lesson)
    hits = sorted(quiz_dir().glob(f"{lesson}_*.yaml"))
    if not hits:
        raise ValueError(f"no question bank for lesson {lesson} in {quiz_dir()} (expected {lesson}_<name>.yaml)")
    return hits[0]


def load_bank(lesson_or_path) -> Bank:
    """The bank of a lesson ("01"..."06") or of a YAML file path."""
    if isinstance(lesson_or_path, (str, int)) and str(lesson_or_path).zfill(2) in PRACTICE_LESSONS and not str(
            lesson_or_path).endswith(".yaml"):
        path = bank_path(str(lesson_or_path).zfill(2) if isinstance(lesson_or_path, str) else lesson_or_path)
    else:
        path = Path(lesson_or_path)
    return parse_bank(read_yaml(path), path)


def seal_document(data: dict, path="(draft)") -> dict:
    """A draft bank (plain ``answer`` / ``explanation`` on choice and config items) with its answers sealed."""
    bank = parse_bank(data, path)  # validates and computes the hashes
    out = {k: v for k, v in data.items() if k != "questions"}
    out["questions"] = []
    for raw, q in zip(data["questions"], bank.questions):
        item = dict(raw)
        if q.kind == "choice":
            item.pop("answer", None)
            item["answer_sha256"] = q.answer_sha256
        if q.kind == "config":
            fields = {}
            for f in q.fields:
                rule = dict(raw["fields"][f.name])
                if f.kind == "choice":
                    rule.pop("answer", None)
                    rule["answer_sha256"] = f.answer_sha256
                fields[f.name] = rule
            item["fields"] = fields
        if q.kind != "numeric" and "explanation" in item:
            item.pop("explanation")
            item["explanation_sealed"] = q.explanation_sealed
        out["questions"].append(item)
    return out
