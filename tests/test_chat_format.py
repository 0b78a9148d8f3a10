"""The task in an instruct model's chat format, budgets per model, and comparing rates by their sampling error."""
from __future__ import annotations

import math

import pytest

from coursekit.data import house_rules, make_examples, task_messages, task_prompt, uses_chat_template
from coursekit.data.support import INTENTS, REPLIES
from coursekit.evaluate import rate_difference
from coursekit.models import budget_key
from coursekit.prompting import few_shot_prompt
from coursekit.train import mix_general_text, to_prompt_completion


@pytest.fixture(scope="module")
def chat_tokenizer():
    from transformers import AutoTokenizer

    from coursekit.models.packaged import packaged_model_dir

    return AutoTokenizer.from_pretrained(str(packaged_model_dir("smollm2-135m-instruct")))


def test_budget_belongs_to_the_model_and_the_size():
    assert budget_key("tiny", "cpu") == "cpu"
    assert budget_key("smollm2-135m-instruct", "cpu") == "real-cpu"
    assert budget_key("HuggingFaceTB/SmolLM2-135M-Instruct", "cpu") == "real-cpu"
    assert budget_key("tiny", "gpu") == budget_key("smollm2-135m-instruct", "gpu") == "gpu"
    with pytest.raises(ValueError, match="'cpu' or 'gpu'"):
        budget_key("tiny", "laptop")


def test_rate_difference_is_a_two_proportion_test():
    tie = rate_difference(0.5, 16, 0.5, 16)
    assert tie["verdict"] == "tie" and tie["difference"] == 0
    # 1.96 pooled standard errors plus Yates' continuity correction, half a ticket on each side: about 0.41
    assert tie["margin"] == pytest.approx(1.96 * math.sqrt(0.25 * 2 / 16) + 1 / 16)
    # Fisher's exact test gives 32/32 against 28/32 a two-sided p of 0.113 (scipy.stats.fisher_exact): not a
    # difference at 95%; the uncorrected z-test's margin, 0.119, would have called the 0.125 gap one
    near_one = rate_difference(28 / 32, 32, 1.0, 32)
    assert near_one["verdict"] == "tie" and near_one["margin"] - 1 / 32 < 0.125 < near_one["margin"]
    # and 32/32 against 26/32 (Fisher: p = 0.024) is a difference
    assert rate_difference(26 / 32, 32, 1.0, 32)["verdict"] == "lower"
    assert rate_difference(0.9, 64, 0.1, 64)["verdict"] == "higher"
    assert rate_difference(0.1, 64, 0.9, 64)["verdict"] == "lower"
    assert rate_difference(0.56, 32, 0.41, 32)["verdict"] == "tie"  # 5 tickets apart on 32 is within chance
    assert rate_difference(0.0, 24, 0.0, 24)["verdict"] == "tie"
    for bad in [dict(n1=0), dict(n1=2.5), dict(p1=1.5), dict(p2=-0.1)]:
        args = dict(p1=0.5, n1=10, p2=0.5, n2=10) | bad
        with pytest.raises(ValueError):
            rate_difference(**args)


def test_best_and_ties_names_the_best_and_what_chance_cannot_tell_from_it():
    from coursekit.evaluate import best_and_ties

    got = best_and_ties({"full": 0.80, "lora": 0.75, "prefix": 0.10, "dora": 0.80}, 64)
    assert got["best"] == "full" and got["tied"] == ["lora", "dora"]  # 0.05 apart on 64 is within chance; 0.70 is not
    assert got["margin"] == pytest.approx(rate_difference(0.75, 64, 0.8, 64)["margin"])  # the widest tie's margin
    # a best rate of 1 has only the continuity correction as its own margin; the tie with 0.906 on 32 tickets was
    # decided by about 0.13
    perfect = best_and_ties({"full": 1.0, "lora": 29 / 32}, 32)
    assert perfect["tied"] == ["lora"] and perfect["margin"] == pytest.approx(
        rate_difference(29 / 32, 32, 1.0, 32)["margin"]) and 0.12 < perfect["margin"] < 0.14
    assert best_and_ties({"r=1": 0.0, "r=4": 0.0}, 16) == {"best": "r=1", "tied": ["r=4"], "margin": 1 / 16}
    with pytest.raises(ValueError, match="at least one"):
        best_and_ties({}, 16)


def test_house_rules_state_every_field_value_and_reply():
    rules = house_rules()
    for intent in INTENTS:
        assert f'"{intent}"' in rules and REPLIES[intent].format(order="<order>") in rules
    for field in ('"intent"', '"order"', '"priority"', '"high"', '"normal"', "null", "Northwind Support"):
        assert field in rules


def test_plain_template_without_a_chat_template(tiny_tokenizer):
    tok = tiny_tokenizer
    ex = make_examples(1)[0]
    assert not uses_chat_template(tok)
    assert task_prompt(ex, tok).startswith("### Instruction:\n")
    assert task_prompt(ex, tok, system="Rules.").startswith("Rules.\n\n### Instruction:\n")
    assert to_prompt_completion([ex], "train", tok)[0]["completion"] == ex["output"]


def test_chat_prompts_put_shots_in_turns_and_rules_in_the_system_message(chat_tokenizer):
    tok = chat_tokenizer
    query, *shots = make_examples(3, seed=2)
    prompt = few_shot_prompt(query, shots, tok, system="RULES")
    assert prompt.startswith("<|im_start|>system\nRULES<|im_end|>") and prompt.endswith("<|im_start|>assistant\n")
    assert prompt.count("<|im_start|>user") == 3 and prompt.count("<|im_start|>assistant") == 3
    for shot in shots:
        assert shot["output"] + "<|im_end|>" in prompt
    messages = task_messages(query, answer=True)
    assert [m["role"] for m in messages] == ["user", "assistant"] and messages[1]["content"] == query["output"]


def test_general_text_mixed_in_stays_conversational(chat_tokenizer):
    rows = mix_general_text(make_examples(6), ["The sky is blue."], fraction=0.25, tokenizer=chat_tokenizer)
    assert all(isinstance(r["prompt"], list) and isinstance(r["completion"], list) for r in rows)
    assert sum(r["completion"][0]["content"] == "The sky is blue." for r in rows) == 2
    again = to_prompt_completion(rows, "train", chat_tokenizer)  # what finetune does with them
    assert again == rows
