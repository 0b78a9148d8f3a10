import json

import pytest

from coursekit.data import (
    IGNORE_INDEX,
    INTENTS,
    format_example,
    format_prompt,
    general_probe,
    general_texts,
    load_task_dataset,
    make_examples,
    parse_answer,
    score_answer,
    to_prompt_completion,
    tokenize_with_labels,
    write_task_files,
)
from coursekit.data.support import SIZES


def test_examples_are_deterministic_and_follow_the_house_rules():
    a, b = make_examples(300, seed=3), make_examples(300, seed=3)
    assert a == b
    assert make_examples(300, seed=4) != a
    intents = set()
    for ex in a:
        triage, reply = ex["output"].split("\n")
        t = json.loads(triage)
        intents.add(t["intent"])
        name = ex["input"].split("\n")[0].removeprefix("From: ")
        assert reply.startswith(f"Hi {name}, thanks for contacting Northwind.")
        assert reply.endswith("- Northwind Support")
        if t["intent"] == "login":
            assert t["order"] is None
        else:
            assert t["order"] in ex["input"] and t["order"] in reply
        urgent = any(w in ex["input"].lower() for w in ("urgent", "asap", "today"))
        assert t["priority"] == ("high" if urgent or t["intent"] == "damaged" else "normal")
    assert intents == set(INTENTS)


def test_splits_differ():
    train = {e["input"] for e in make_examples(2000, split="train")}
    test = [e["input"] for e in make_examples(200, split="test")]
    assert sum(t in train for t in test) < 10  # templates repeat, tickets (name, order number) almost never


def test_score_answer_field_by_field():
    ref = make_examples(1, seed=1)[0]["output"]
    assert score_answer(ref, ref)["exact"]
    t = json.loads(ref.split("\n")[0])
    wrong_priority = json.dumps({**t, "priority": "low"}) + "\n" + ref.split("\n")[1]
    s = score_answer(wrong_priority, ref)
    assert s["json_valid"] and s["intent"] and s["order"] and s["reply"]
    assert not s["priority"] and not s["exact"]
    assert score_answer("not json at all", ref) == dict.fromkeys(
        ["json_valid", "intent", "order", "priority", "reply", "exact"], False)
    assert parse_answer('{"a": 1\nreply')["triage"] is None


def test_prompt_template_and_label_masking(tiny_tokenizer):
    ex = make_examples(1)[0]
    prompt = format_prompt(ex)
    assert prompt.startswith("### Instruction:\n") and "### Input:\n" in prompt and prompt.endswith("### Response:\n")
    assert format_example(ex, eos="</s>") == prompt + ex["output"] + "</s>"
    assert to_prompt_completion(ex) == {"prompt": prompt, "completion": ex["output"]}
    assert format_prompt({"instruction": "Say hi", "output": "hi"}) == "### Instruction:\nSay hi\n\n### Response:\n"
    tok = tiny_tokenizer
    enc = tokenize_with_labels(ex, tok, max_length=512)
    labelled = [i for i, lab in zip(enc["input_ids"], enc["labels"]) if lab != IGNORE_INDEX]
    assert tok.decode(labelled, skip_special_tokens=True) == ex["output"]
    assert enc["labels"][0] == IGNORE_INDEX and enc["labels"][-1] == tok.eos_token_id
    with pytest.raises(ValueError, match="max_length"):
        tokenize_with_labels(ex, tok, max_length=10)
    with pytest.raises(ValueError, match="missing field"):
        format_example({"instruction": "x"})


def test_task_files_are_written_once_and_never_clobbered(tmp_path):
    paths = write_task_files(tmp_path / "d", seed=0)
    assert sum(1 for _ in open(paths["train"])) == SIZES["cpu"]["train"] >= 10_000
    mtime = (tmp_path / "d" / "train.jsonl").stat().st_mtime_ns
    assert write_task_files(tmp_path / "d", seed=0) == paths  # reused, not rewritten
    assert (tmp_path / "d" / "train.jsonl").stat().st_mtime_ns == mtime
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "train.jsonl").write_text('{"instruction": "mine", "output": "keep me"}\n')
    with pytest.raises(ValueError, match="overwrite"):
        write_task_files(mine)
    assert "keep me" in (mine / "train.jsonl").read_text()


def test_load_task_dataset_default_and_own_files(tmp_path):
    ds = load_task_dataset()
    assert set(ds) == {"train", "validation", "test"}
    assert ds["train"].column_names == ["instruction", "input", "output"]
    own = tmp_path / "train.jsonl"
    own.write_text('{"instruction": "Translate", "input": "Hello", "output": "Bonjour"}\n')
    assert load_task_dataset(data_files=str(own))["train"][0]["output"] == "Bonjour"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "answer": "a"}\n')
    with pytest.raises(ValueError, match="instruction"):
        load_task_dataset(data_files=str(bad))
    with pytest.raises(ValueError, match="not found"):
        load_task_dataset(data_files=str(tmp_path / "nope.jsonl"))
    with pytest.raises(ValueError, match="size"):
        load_task_dataset(size="huge")


def test_general_corpus_and_probe():
    train, held = general_texts("train", 500), general_texts("heldout", 500)
    assert train == general_texts("train", 500) and train != held
    probe = general_probe()
    kinds = {p["kind"] for p in probe}
    assert len(probe) == 120 and len(kinds) == 10
    assert all(p["answer"] and p["prompt"] and not p["prompt"].endswith(p["answer"]) for p in probe)
    with pytest.raises(ValueError):
        general_texts("validation")
    with pytest.raises(ValueError):
        general_probe(0)
