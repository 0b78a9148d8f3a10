"""The fine-tuning task: Northwind's customer-support assistant.

Each example is a support ticket (``input``) with an ``instruction``; the ``output`` is a JSON triage line followed by a
reply in the house style. Both parts follow strict rules, so an answer is scored exactly:

    {"intent": "refund", "order": "4821", "priority": "high"}
    Hi Maria, thanks for contacting Northwind. I have started a refund for order 4821. - Northwind Support

``priority`` is "high" when the ticket is urgent (it says so) or the item arrived damaged, else "normal"; ``order`` is
the ticket's order number, or null for account tickets that have none.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import re
from pathlib import Path

from coursekit.data.words import CITIES, DAYS, FIRST_NAMES, PRODUCTS
from coursekit.validate import positive_int

COMPANY = "Northwind"
TASK_VERSION = "v2"  # v2: intents are plain words the tokenizer knows
INSTRUCTIONS = [
    "Triage this support ticket and reply in the Northwind style.",
    "Classify the ticket as JSON, then write the Northwind reply.",
    "Read the customer ticket. Give the triage JSON and the reply.",
    "You are Northwind support. Triage the ticket and answer the customer.",
]
URGENT = ["This is urgent.", "Please help asap.", "I need this fixed today.", "Urgent, please.",
          "Please treat this as urgent."]
CALM = ["No rush.", "Thanks in advance.", "Whenever you can.", "Thank you.", ""]

TICKETS = {
    "refund": [
        "I was charged twice for order {order}. I want a refund.",
        "I returned the {item} from order {order} and I am still waiting for my money back.",
        "Please refund order {order}, the {item} was not what I expected.",
        "Can I get my money back for order {order}? I do not need the {item} anymore.",
    ],
    "late": [
        "My {item} from order {order} has not arrived yet.",
        "Order {order} was due on {day} but nothing came to {city}.",
        "Where is my order {order}? The tracking page has not changed for days.",
        "The {item} in order {order} is late. It should have arrived on {day}.",
    ],
    "cancel": [
        "Please cancel order {order}. I ordered the wrong {item}.",
        "I want to cancel my order {order} before it ships.",
        "Cancel order {order} please, I found a {item} somewhere else.",
        "I changed my mind about the {item}. Please cancel order {order}.",
    ],
    "damaged": [
        "The {item} from order {order} arrived broken.",
        "My {item} came with a cracked screen. Order {order}.",
        "Order {order} arrived damaged, the box was crushed and the {item} does not work.",
        "The {item} I got in order {order} is scratched and bent.",
    ],
    "login": [
        "I cannot log in to my account. The password reset email never arrives.",
        "My account is locked after too many attempts. How do I get back in?",
        "I forgot my password and the reset link does not work.",
        "I cannot sign in from {city}. It says my account is disabled.",
    ],
    "invoice": [
        "Why was I charged extra on the invoice for order {order}?",
        "The invoice for order {order} shows a fee I do not understand.",
        "Can you explain the charges on order {order}? The {item} cost more than listed.",
        "I need a copy of the invoice for order {order}.",
    ],
}
REPLIES = {
    "refund": "I have started a refund for order {order}.",
    "late": "I have asked the courier to trace order {order}.",
    "cancel": "Order {order} is now cancelled.",
    "damaged": "A replacement for order {order} is on its way.",
    "login": "I have sent you a new login link.",
    "invoice": "I have emailed you the invoice for order {order}.",
}
INTENTS = tuple(TICKETS)
INTENT_MEANINGS = {
    "refund": "the customer wants their money back",
    "late": "an order has not arrived on time",
    "cancel": "the customer wants to cancel an order",
    "damaged": "an item arrived broken or damaged",
    "login": "the customer cannot get into their account",
    "invoice": "a question about an invoice or a charge",
}


def house_rules() -> str:
    """The task's rules as a practitioner would write them into a prompt: the JSON fields, their allowed values, the
    reply's house style with the sentence for each intent. Built from the same constants that generate the data."""
    sentences = "\n".join(f"- {i}: {REPLIES[i].format(order='<order>')}" for i in INTENTS)
    meanings = "; ".join(f'"{i}" ({m})' for i, m in INTENT_MEANINGS.items())
    return (
        f"You are the customer-support assistant of {COMPANY}. Answer every ticket with exactly two lines.\n"
        "Line 1: one JSON object with three keys, in this order: "
        '{"intent": ..., "order": ..., "priority": ...}.\n'
        f"- intent: one of {meanings}.\n"
        '- order: the order number from the ticket as a string of digits, e.g. "4821", or null when the ticket has '
        "none.\n"
        '- priority: "high" if the customer says it is urgent or the item arrived damaged, otherwise "normal".\n'
        f"Line 2: the reply, exactly: Hi <first name>, thanks for contacting {COMPANY}. <sentence> - {COMPANY} "
        "Support\n"
        f"where <first name> is the name after From: and <sentence> depends on the intent:\n{sentences}\n"
        "Write nothing else."
    )
SPLITS = ("train", "validation", "test")
SIZES = {  # examples per split for each size of run
    "cpu": {"train": 10_000, "validation": 300, "test": 200},
    "gpu": {"train": 10_000, "validation": 500, "test": 500},
}
SPLIT_OFFSETS = {"train": 0, "validation": 1, "test": 2}
JSON_LINE = re.compile(r"^\{.*\}$")


def make_example(rng: random.Random) -> dict:
    """One ticket and its reference answer."""
    intent = rng.choice(INTENTS)
    name = rng.choice(FIRST_NAMES)
    order = None if intent == "login" else str(rng.randint(1000, 9999))
    body = rng.choice(TICKETS[intent]).format(order=order, item=rng.choice(PRODUCTS), day=rng.choice(DAYS),
                                                city=rng.choice(CITIES))
    urgent = rng.random() < 0.3
    tail = rng.choice(URGENT if urgent else CALM)
    ticket = f"From: {name}\n{body}" + (f" {tail}" if tail else "")
    priority = "high" if urgent or intent == "damaged" else "normal"
    triage = json.dumps({"intent": intent, "order": order, "priority": priority})
    reply = f"Hi {name}, thanks for contacting {COMPANY}. {REPLIES[intent].format(order=order)} - {COMPANY} Support"
    return {"instruction": rng.choice(INSTRUCTIONS), "input": ticket, "output": f"{triage}\n{reply}"}


def make_examples(n: int, seed: int = 0, split: str = "train") -> list[dict]:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")
    positive_int("n", n)
    rng = random.Random(seed * 1000 + SPLIT_OFFSETS[split] * 7919 + 17)
    return [make_example(rng) for _ in range(n)]


def parse_answer(text: str) -> dict:
    """Split an answer into its triage dict (or None when not valid JSON) and its reply line."""
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    triage = None
    if lines and JSON_LINE.match(lines[0]):
        try:
            triage = json.loads(lines[0])
        except json.JSONDecodeError:
            triage = None
        if not isinstance(triage, dict):
            triage = None
    reply = lines[1] if len(lines) > 1 else ""
    return {"triage": triage, "reply": reply}


def score_answer(prediction: str, reference: str) -> dict:
    """Field by field: valid JSON, intent, order, priority, reply; ``exact`` when every part is right."""
    pred, ref = parse_answer(prediction), parse_answer(reference)
    t, r = pred["triage"] or {}, ref["triage"] or {}
    scores = {
        "json_valid": pred["triage"] is not None,
        "intent": t.get("intent") == r.get("intent"),
        "order": "order" in t and t.get("order") == r.get("order"),
        "priority": t.get("priority") == r.get("priority"),
        "reply": pred["reply"] == ref["reply"],
    }
    scores["exact"] = all(scores.values())
    return scores


def default_data_dir(seed: int = 0, size: str = "cpu") -> Path:
    root = Path(os.environ.get("COURSEKIT_CACHE", Path.home() / ".cache" / "coursekit"))
    return root / f"support-{TASK_VERSION}-{size}-seed{seed}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_task_files(out_dir: str | os.PathLike | None = None, seed: int = 0, size: str = "cpu",
                     overwrite: bool = False) -> dict[str, str]:
    """Write train/validation/test JSONL files (and a manifest) and return ``{split: path}``.

    An existing folder made by this function with the same settings is reused. Files of yours are never replaced
    unless ``overwrite=True``.
    """
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; allowed: {', '.join(SIZES)}")
    out = Path(out_dir) if out_dir is not None else default_data_dir(seed, size)
    manifest_path = out / "manifest.json"
    wanted = {"task": TASK_VERSION, "seed": seed, "size": size, "counts": SIZES[size]}
    paths = {s: out / f"{s}.jsonl" for s in SPLITS}
    if manifest_path.exists() and not overwrite:
        manifest = json.loads(manifest_path.read_text())
        if {k: manifest.get(k) for k in wanted} == wanted and all(
                p.exists() and _sha256(p) == manifest["sha256"][s] for s, p in paths.items()):
            return {s: str(p) for s, p in paths.items()}
    if not overwrite and any(p.exists() for p in paths.values()):
        raise ValueError(f"{out} already holds task files that this generator did not write (or that were changed); "
                         "pass another folder, or overwrite=True to replace them")
    out.mkdir(parents=True, exist_ok=True)
    sha = {}
    for split, path in paths.items():
        rows = make_examples(SIZES[size][split], seed=seed, split=split)
        tmp = path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
        os.replace(tmp, path)
        sha[split] = _sha256(path)
    manifest_path.write_text(json.dumps({**wanted, "sha256": sha}, indent=2))
    return {s: str(p) for s, p in paths.items()}


def validate_dataset(ds, name: str = "dataset") -> None:
    """A split must be non-empty and have instruction and output columns (input is optional)."""
    if len(ds) == 0:
        raise ValueError(f"{name} is empty; it needs at least one example with fields instruction, input, output")
    cols = set(ds.column_names)
    missing = [f for f in ("instruction", "output") if f not in cols]
    if missing:
        raise ValueError(f"{name} lacks field(s) {missing}; expected instruction, input (optional), output; "
                         f"found {sorted(cols)}")


def load_task_dataset(size: str = "cpu", seed: int = 0, data_files: dict | str | None = None):
    """The support task as a ``datasets.DatasetDict`` (train / validation / test), loaded from JSONL files.

    ``data_files`` takes your own files instead (the same path a learner uses for their ``train.jsonl``): a path,
    or ``{"train": ..., "validation": ..., "test": ...}``.
    """
    from datasets import load_dataset

    files = data_files if data_files is not None else write_task_files(seed=seed, size=size)
    if isinstance(files, (str, os.PathLike)):
        files = {"train": str(files)}
    for split, path in files.items():
        if not Path(path).exists():
            raise ValueError(f"data file for split {split!r} not found: {path}")
    ds = load_dataset("json", data_files={k: str(v) for k, v in files.items()})
    for split in ds:
        validate_dataset(ds[split], f"split {split!r}")
    return ds
