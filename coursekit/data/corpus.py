"""The general corpus the embedded model is pretrained on, and the general-skills probe.

The corpus teaches what later lessons lean on and what forgetting destroys: world facts, small arithmetic,
opposites, copying names, numbers and codes mentioned earlier, comparing numbers, short letters and records.
Everything is generated from templates and word lists, deterministically from a seed; nothing is downloaded.
"""
from __future__ import annotations

import random
import string

from coursekit.data.words import (
    ADJECTIVES,
    ANIMAL_SOUNDS,
    CITIES,
    COUNTRY_CAPITALS,
    DAYS,
    FIRST_NAMES,
    MONTHS,
    OPPOSITES,
    PRODUCTS,
    THING_COLORS,
    VERBS_PAST,
)
from coursekit.validate import positive_int

SPLIT_SEEDS = {"train": 1234, "heldout": 98765}
PROBE_SEED = 4242
DEFAULT_SIZES = {"train": 60_000, "heldout": 600}


def _code(rng: random.Random, n: int = 4) -> str:
    return "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(n))


def _order(rng: random.Random) -> str:
    return str(rng.randint(1000, 9999))


# --- probe items: (prompt, answer); the corpus states the same skills in many surface forms -------------------
def _capital(rng):
    c = rng.choice(list(COUNTRY_CAPITALS))
    return f"The capital of {c} is", COUNTRY_CAPITALS[c]


def _add(rng):
    a, b = rng.randint(0, 30), rng.randint(0, 30)
    return f"{a} + {b} =", str(a + b)


def _opposite(rng):
    w = rng.choice(list(OPPOSITES))
    return f"The opposite of {w} is", OPPOSITES[w]


def _animal(rng):
    a = rng.choice(list(ANIMAL_SOUNDS))
    return f"A {a} says", ANIMAL_SOUNDS[a]


def _color(rng):
    t = rng.choice(list(THING_COLORS))
    return f"The color of {t} is", THING_COLORS[t]


def _next_day(rng):
    i = rng.randrange(7)
    return f"The day after {DAYS[i]} is", DAYS[(i + 1) % 7]


def _copy_code(rng):
    code = _code(rng, rng.choice([4, 5]))
    return f"Copy the code {code}. The code is", code


def _who(rng):
    name, item, verb = rng.choice(FIRST_NAMES), rng.choice(PRODUCTS), rng.choice(VERBS_PAST)
    return f"{name} {verb} a {item}. The {item} was {verb} by", name


def _larger(rng):
    a, b = rng.sample(range(1, 100), 2)
    return f"Which is larger, {a} or {b}? The larger is", str(max(a, b))


def _order_recall(rng):
    name, num = rng.choice(FIRST_NAMES), _order(rng)
    return f"{name} placed order {num} today. The order number is", num


PROBE_KINDS = {
    "capital": _capital, "addition": _add, "opposite": _opposite, "animal": _animal, "color": _color,
    "next_day": _next_day, "copy_code": _copy_code, "who_did_it": _who, "larger": _larger,
    "order_recall": _order_recall,
}


# --- corpus documents -------------------------------------------------------------------------------------------
def _doc_facts(rng):
    kind = rng.randrange(6)
    if kind == 0:
        c = rng.choice(list(COUNTRY_CAPITALS))
        cap = COUNTRY_CAPITALS[c]
        return rng.choice([
            f"The capital of {c} is {cap}.", f"{cap} is the capital of {c}.",
            f"Q: What is the capital of {c}?\nA: {cap}", f"People in {c} often visit {cap}, the capital.",
        ])
    if kind == 1:
        w = rng.choice(list(OPPOSITES))
        o = OPPOSITES[w]
        return rng.choice([f"The opposite of {w} is {o}.", f"{w.capitalize()} and {o} are opposites.",
                           f"Q: What is the opposite of {w}?\nA: {o}", f"The opposite of {o} is {w}."])
    if kind == 2:
        a = rng.choice(list(ANIMAL_SOUNDS))
        s = ANIMAL_SOUNDS[a]
        return rng.choice([f"A {a} says {s}.", f"The {a} said {s}, {s}.", f"Q: What does a {a} say?\nA: {s}"])
    if kind == 3:
        t = rng.choice(list(THING_COLORS))
        col = THING_COLORS[t]
        return rng.choice([f"The color of {t} is {col}.", f"{t.capitalize()} is {col}.",
                           f"Q: What color is {t}?\nA: {col}"])
    if kind == 4:
        i = rng.randrange(7)
        return rng.choice([f"The day after {DAYS[i]} is {DAYS[(i + 1) % 7]}.",
                           f"After {DAYS[i]} comes {DAYS[(i + 1) % 7]}.",
                           f"The day before {DAYS[(i + 1) % 7]} is {DAYS[i]}."])
    m = rng.randrange(12)
    return f"The month after {MONTHS[m]} is {MONTHS[(m + 1) % 12]}."


def _doc_math(rng):
    a, b = rng.randint(0, 30), rng.randint(0, 30)
    kind = rng.randrange(5)
    if kind == 0:
        return f"{a} + {b} = {a + b}"
    if kind == 1:
        return f"{a} plus {b} is {a + b}."
    if kind == 2:
        return f"Q: What is {a} + {b}?\nA: {a + b}"
    if kind == 3:
        x, y = rng.sample(range(1, 100), 2)
        return rng.choice([f"Which is larger, {x} or {y}? The larger is {max(x, y)}.",
                           f"{max(x, y)} is larger than {min(x, y)}."])
    hi = max(a, b)
    return f"{hi} - {min(a, b)} = {hi - min(a, b)}"


def _doc_copy(rng):
    kind = rng.randrange(6)
    name, item, verb, num = rng.choice(FIRST_NAMES), rng.choice(PRODUCTS), rng.choice(VERBS_PAST), _order(rng)
    if kind == 0:
        code = _code(rng, rng.choice([3, 4, 5, 6]))
        return rng.choice([f"Copy the code {code}. The code is {code}.", f"Code: {code}\nRepeat: {code}",
                           f"Your code is {code}. Please keep {code} safe."])
    if kind == 1:
        return f"{name} {verb} a {item}. The {item} was {verb} by {name}."
    if kind == 2:
        return rng.choice([f"{name} placed order {num} today. The order number is {num}.",
                           f"Order {num} belongs to {name}. {name} asked about order {num}.",
                           f"Ticket from {name} about order {num}: the order number is {num} and the name is {name}."])
    if kind == 3:
        city = rng.choice(CITIES)
        return f"{name} lives in {city}. Where does {name} live? In {city}."
    if kind == 4:
        adj = rng.choice(ADJECTIVES)
        return f"{name} has a {adj} {item}. What does {name} have? A {adj} {item}."
    words = rng.sample(PRODUCTS, 3)
    return f"List: {', '.join(words)}. The first item is {words[0]} and the last item is {words[2]}."


# Words that also appear as quoted values (in JSON records and ticket topics). A real base model has read every
# common word in every form (after a space, inside quotes, capitalised); this corpus shows these quoted too, so the
# tokenizer keeps them whole (``"refund"`` is one token, not ``re`` + ``fu`` + ``nd``) and the quoted word means what
# the plain word means. The records' values are random; only the ticket topics below follow the ticket's content.
LABEL_WORDS = ["refund", "late", "cancel", "damaged", "login", "invoice", "question", "complaint", "greeting",
               "thanks", "feedback"]


def _doc_letter(rng):
    name, item, num = rng.choice(FIRST_NAMES), rng.choice(PRODUCTS), _order(rng)
    day, city, shop = rng.choice(DAYS), rng.choice(CITIES), rng.choice(["Acme", "Bluebird", "Corner Shop", "Zenith"])
    kind = rng.randrange(5)
    if kind == 0:
        return (f"Dear {name},\nThank you for your order {num}. Your {item} will arrive on {day}.\n"
                f"Best wishes,\n{shop}")
    if kind == 1:
        return (f"Hello {shop},\nMy {item} from order {num} has not arrived in {city}. Can you check it?\n"
                f"Thanks, {name}")
    if kind == 2:
        import json

        record = rng.choice([
            {"name": name, "city": city, "order": num},
            {"intent": rng.choice(LABEL_WORDS), "order": rng.choice([num, None]),
             "priority": rng.choice(["normal", "high", "low"])},
            {"customer": name, "item": item, "status": rng.choice(["open", "closed", None]),
             "priority": rng.choice(["normal", "high"])},
        ])
        return json.dumps(record)
    if kind == 3:
        return f"name: {name}\nitem: {item}\norder: {num}\nday: {day}"
    return f"{name} wrote to {shop} on {day} about a {item}. {shop} replied to {name} the same day."


SHOPS = ["Acme", "Bluebird", "Corner Shop", "Zenith", "Northwind", "Fabrikam", "Contoso", "Tailspin"]
GENERIC_REPLIES = [
    "Hi {name}, thanks for contacting {shop}. We are looking into order {order} now. - {shop} Support",
    "Dear {name},\nSorry for the trouble with order {order}. We will write again within a day.\n{shop} Support",
    "Hello {name}, thank you for your message about order {order}. Our team will help you today. - {shop}",
    "Hi {name}, thanks for contacting {shop}. {sentence} - {shop} Support",
]


def _ticket(rng):
    from coursekit.data.support import REPLIES, TICKETS

    intent = rng.choice(list(TICKETS))
    order = _order(rng)
    body = rng.choice(TICKETS[intent]).format(order=order, item=rng.choice(PRODUCTS), day=rng.choice(DAYS),
                                                city=rng.choice(CITIES))
    sentence = REPLIES[intent].format(order=order)
    return intent, order, body, sentence


def _doc_support(rng):
    """Support tickets and replies in free form: the vocabulary and the copying the task leans on, and what any
    support desk knows: a customer who says it is urgent, or whose item arrived damaged, is dealt with first."""
    from coursekit.data.support import CALM, URGENT

    name, shop = rng.choice(FIRST_NAMES), rng.choice(SHOPS)
    intent, order, body, sentence = _ticket(rng)
    urgent = rng.random() < 0.3
    tail = rng.choice(URGENT if urgent else CALM)
    body += f" {tail}" if tail else ""
    priority = "high" if urgent or intent == "damaged" else "normal"
    kind = rng.randrange(4)
    if kind == 0:
        reply = rng.choice(GENERIC_REPLIES).format(name=name, shop=shop, order=order, sentence=sentence)
        return f"From: {name}\n{body}\n\n{reply}"
    if kind == 1:
        return (f"Ticket from {name} to {shop}, {priority} priority: {body} The agent wrote back: Hi {name}, "
                f"{sentence}")
    if kind == 2:
        return (f"Customer: {name}\nMessage: {body}\nOrder: {order}\nTopic: \"{intent}\"\nPriority: \"{priority}\"\n"
                f"Answer: {sentence}")
    return f"{shop} support log. {name} said: {body} Reply sent to {name}: {sentence}"


INSTRUCTION_TASKS = [
    ("Answer the question.", lambda rng: _qa(rng)),
    ("Extract the order number from the ticket.", lambda rng: _extract(rng, "order")),
    ("Who wrote this ticket? Give the name.", lambda rng: _extract(rng, "name")),
    ("Copy the text exactly.", lambda rng: (lambda c: (c, c))(_code(rng, rng.choice([4, 5, 6])))),
    ("Write a short reply to the customer.", lambda rng: _extract(rng, "reply")),
]


def _qa(rng):
    prompt, answer = PROBE_KINDS[rng.choice(["capital", "opposite", "animal", "color", "next_day"])](rng)
    return prompt + " what?", answer


def _extract(rng, what):
    name = rng.choice(FIRST_NAMES)
    intent, order, body, sentence = _ticket(rng)
    while what == "order" and order not in body:  # account tickets carry no order number
        intent, order, body, sentence = _ticket(rng)
    ticket = f"From: {name}\n{body}"
    if what == "order":
        return ticket, order
    if what == "name":
        return ticket, name
    return ticket, f"Hi {name}, thanks for writing. {sentence}"


def _doc_instruction(rng):
    """General instruction-following in the ### Instruction / ### Input / ### Response format."""
    instruction, make = rng.choice(INSTRUCTION_TASKS)
    inp, answer = make(rng)
    return f"### Instruction:\n{instruction}\n\n### Input:\n{inp}\n\n### Response:\n{answer}"


DOC_KINDS = ((_doc_facts, 2), (_doc_math, 1), (_doc_copy, 5), (_doc_letter, 2), (_doc_support, 4),
             (_doc_instruction, 2))


def general_texts(split: str = "train", n: int | None = None) -> list[str]:
    """Documents of the general corpus. ``split`` is "train" (pretraining) or "heldout" (perplexity)."""
    if split not in SPLIT_SEEDS:
        raise ValueError(f"unknown split {split!r}; allowed: {', '.join(SPLIT_SEEDS)}")
    n = DEFAULT_SIZES[split] if n is None else n
    positive_int("n", n)
    rng = random.Random(SPLIT_SEEDS[split])
    makers = [m for m, w in DOC_KINDS for _ in range(w)]
    docs = []
    for _ in range(n):
        if rng.random() < 0.35:  # some documents teach the probe skills verbatim, in the probe's own form
            prompt, answer = PROBE_KINDS[rng.choice(list(PROBE_KINDS))](rng)
            docs.append(f"{prompt} {answer}.")
        else:
            docs.append(rng.choice(makers)(rng))
    return docs


def general_probe(n_per_kind: int = 12) -> list[dict]:
    """The general-skills probe: short prompts with checkable answers, ``n_per_kind`` of each kind.

    Facts (capitals, opposites, ...) are knowledge the corpus holds; arithmetic, copying and recall items are
    fresh instances, so they measure skills rather than memorised strings.
    """
    positive_int("n_per_kind", n_per_kind)
    rng = random.Random(PROBE_SEED)
    items = []
    for kind, make in PROBE_KINDS.items():
        seen = set()
        while len([i for i in items if i["kind"] == kind]) < n_per_kind:
            prompt, answer = make(rng)
            if prompt in seen:
                if len(seen) >= 6 and rng.random() < 0.5:  # small fact tables: allow few repeats
                    pass
                else:
                    continue
            seen.add(prompt)
            items.append({"kind": kind, "prompt": prompt, "answer": answer})
    return items
