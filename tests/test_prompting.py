"""Few-shot and retrieval prompts (lesson 01), the plain-Python TF-IDF retriever, and the measurement of a strategy."""
import json
import math

import pytest

from coursekit.data import format_example, format_prompt, make_examples
from coursekit.prompting import (
    PromptingComparison,
    PromptingRow,
    TfidfRetriever,
    choose_shots,
    compare_prompting,
    few_shot_prompt,
    few_shot_prompts,
    measure_prompts,
    query_text,
    retrieval_prompts,
    words,
)

POOL = make_examples(300, seed=0, split="train")
QUERIES = make_examples(40, seed=0, split="test")


def intent(example):
    return json.loads(example["output"].splitlines()[0])["intent"]


def test_zero_shot_prompt_is_the_template_prompt():
    assert few_shot_prompt(QUERIES[0], []) == format_prompt(QUERIES[0])
    assert few_shot_prompts(QUERIES[:3], POOL, 0) == [format_prompt(q) for q in QUERIES[:3]]


def test_few_shot_prompt_puts_solved_shots_before_the_query():
    shots = POOL[:2]
    text = few_shot_prompt(QUERIES[0], shots)
    assert text.startswith(format_example(shots[0]))
    assert text.endswith(format_prompt(QUERIES[0]))
    assert format_example(shots[1]) in text
    assert text.count("### Response:\n") == 3  # two answered, one open
    assert shots[0]["output"] in text and QUERIES[0]["output"] not in text


def test_choose_shots_is_fixed_by_the_seed():
    a, b, c = choose_shots(POOL, 4, seed=0), choose_shots(POOL, 4, seed=0), choose_shots(POOL, 4, seed=1)
    assert a == b and a != c and len(a) == 4
    assert all(s in POOL for s in a)
    prompts = few_shot_prompts(QUERIES[:5], POOL, 4, seed=0)
    # the same four shots in front of every query
    prefix = few_shot_prompt(QUERIES[0], a)[: -len(format_prompt(QUERIES[0]))]
    assert all(p.startswith(prefix) for p in prompts)


def test_tfidf_matches_a_hand_computation():
    docs = ["refund my order", "cancel my order", "refund refund"]
    r = TfidfRetriever(docs)
    n = 3
    idf = {w: math.log((1 + n) / (1 + df)) + 1 for w, df in {"refund": 2, "my": 2, "order": 2, "cancel": 1}.items()}
    assert r.idf == pytest.approx(idf)
    d0 = [idf["refund"], idf["my"], idf["order"]]
    expected0 = idf["refund"] / math.sqrt(sum(v * v for v in d0))
    scores = r.scores("Refund!")
    assert scores[0] == pytest.approx(expected0)
    assert scores[1] == 0.0
    assert scores[2] == pytest.approx(1.0)
    assert r.top_k("refund", 2) == [2, 0]
    assert r.scores("nothing known here") == [0.0, 0.0, 0.0]
    assert words("Order 4821: REFUND, now") == ["order", "refund", "now"]


def test_an_identical_document_is_the_nearest():
    texts = [query_text(p) for p in POOL]
    r = TfidfRetriever(texts)
    scores = r.scores(texts[17])
    assert scores[17] == pytest.approx(1.0) and max(scores) == pytest.approx(1.0)
    assert scores[r.top_k(texts[17], 1)[0]] == pytest.approx(1.0)


def test_retrieval_pulls_in_examples_of_the_same_intent():
    r = TfidfRetriever([query_text(p) for p in POOL])
    same = sum(intent(POOL[i]) == intent(q) for q in QUERIES for i in r.top_k(query_text(q), 4))
    assert same / (4 * len(QUERIES)) > 0.9  # random shots would agree about 1 time in 6
    prompts = retrieval_prompts(QUERIES[:5], POOL, k=3, retriever=r)
    for q, p in zip(QUERIES[:5], prompts):
        nearest = r.top_k(query_text(q), 3)
        assert p == few_shot_prompt(q, [POOL[i] for i in reversed(nearest)])  # most similar last
        assert p.endswith(format_prompt(q))


@pytest.mark.parametrize("call, message", [
    (lambda: choose_shots(POOL, -1), "non-negative"),
    (lambda: choose_shots(POOL, True), "non-negative"),
    (lambda: choose_shots(POOL[:3], 4), "only 3"),
    (lambda: few_shot_prompt(QUERIES[0], [{"text": "x"}]), "instruction"),
    (lambda: few_shot_prompt(QUERIES[0], POOL[0]), "one dict"),
    (lambda: retrieval_prompts(QUERIES[:2], POOL[:2], k=3), "only 2"),
    (lambda: retrieval_prompts(QUERIES[:2], POOL, k=1, retriever=TfidfRetriever(["a"])), "indexes 1"),
    (lambda: TfidfRetriever([]), "at least one"),
    (lambda: TfidfRetriever(["a b"]).top_k("a", 2), "holds only 1"),
    (lambda: compare_prompting(None, None, QUERIES, POOL, ks=()), "at least one k"),
    (lambda: compare_prompting(None, None, QUERIES, POOL, ks=(0, 1, 1)), "repeated"),
    (lambda: compare_prompting(None, None, QUERIES, POOL, ks=(0, -2)), "non-negative"),
    (lambda: compare_prompting(None, None, QUERIES, POOL, retrieval_k=0), "retrieves nothing"),
    (lambda: compare_prompting(None, None, QUERIES, POOL, too_long="truncate"), "too_long"),
    (lambda: PromptingComparison().row("few-shot"), "no row"),
    (lambda: PromptingComparison().add({"k": 1}), "PromptingRow"),
    (lambda: PromptingComparison().plot(), "nothing to plot"),
])
def test_bad_input_says_what_is_allowed(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ---------------------------------------------------------------------------------------------- with a small model


@pytest.fixture(scope="module")
def small_model():
    """A random-weight two-layer Llama with a byte-level BPE tokenizer trained on the task's text (seconds)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from coursekit.models.build import train_tokenizer

    tok = train_tokenizer([format_example(e) for e in POOL], vocab_size=400)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
                      bos_token_id=1, eos_token_id=2, pad_token_id=0)
    return LlamaForCausalLM(cfg).eval(), tok


def test_measure_prompts_reports_tokens_latency_and_metric(small_model):
    model, tok = small_model
    zero = measure_prompts(model, tok, QUERIES[:6], max_new_tokens=8, latency_examples=2)
    four = measure_prompts(model, tok, QUERIES[:6], few_shot_prompts(QUERIES[:6], POOL, 4), strategy="few-shot", k=4,
                           max_new_tokens=8, latency_examples=2)
    assert isinstance(zero, PromptingRow) and zero.n == 6 and zero.latency_n == 2
    expected_zero = sum(len(tok(format_prompt(q))["input_ids"]) for q in QUERIES[:6]) / 6
    assert zero.prompt_tokens_mean == pytest.approx(expected_zero)
    assert four.prompt_tokens_mean > 4 * zero.prompt_tokens_mean  # four solved examples ride along every query
    assert zero.task_metric == 0.0  # random weights answer nothing right
    assert zero.seconds_per_answer > 0 and four.throughput_seconds_per_answer > 0
    assert set(zero.fields) >= {"json_valid", "intent", "order", "priority", "reply", "exact"}
    # the timed answers' length (latency grows with it): the same greedy answers, re-tokenized
    from coursekit.evaluate import generate

    timed = generate(model, tok, [format_prompt(q) for q in QUERIES[:2]], max_new_tokens=8, batch_size=1)
    assert zero.answer_tokens_mean == pytest.approx(
        sum(len(tok(a, add_special_tokens=False)["input_ids"]) for a in timed) / 2) and zero.answer_tokens_mean > 0
    assert measure_prompts(model, tok, QUERIES[:2], max_new_tokens=8, latency_examples=0).answer_tokens_mean is None


def test_a_prompt_longer_than_the_context_is_refused(small_model):
    model, tok = small_model
    model.config.max_position_embeddings, old = 200, model.config.max_position_embeddings
    try:
        with pytest.raises(ValueError, match="exceeds the model's context of 200"):
            measure_prompts(model, tok, QUERIES[:2], few_shot_prompts(QUERIES[:2], POOL, 4), strategy="few-shot", k=4)
        cmp = compare_prompting(model, tok, QUERIES[:2], POOL, ks=(0, 4), retrieval_k=None, max_new_tokens=4,
                                latency_examples=1)
        skipped = cmp.row("few-shot", 4)
        assert not skipped.fits_context and skipped.task_metric is None and skipped.seconds_per_answer is None
        assert skipped.prompt_tokens_max + 4 > 200 and skipped.prompt_tokens_mean > cmp.row("zero-shot").prompt_tokens_mean
        assert cmp.row("zero-shot").fits_context and cmp.fewshot_task_metric == {0: 0.0, 4: None}
        assert "does not fit the context" in cmp.table()
        assert len(cmp.plot().axes) == 3
    finally:
        model.config.max_position_embeddings = old


def test_compare_prompting_runs_every_strategy(small_model):
    model, tok = small_model
    cmp = compare_prompting(model, tok, QUERIES[:4], POOL, ks=(2, 0, 1), retrieval_k=2, max_new_tokens=4,
                            latency_examples=1)
    assert [(r.strategy, r.k) for r in cmp.rows] == [("zero-shot", 0), ("few-shot", 1), ("few-shot", 2),
                                                     ("retrieval", 2)]
    assert cmp.fewshot_task_metric == {0: 0.0, 1: 0.0, 2: 0.0}
    tokens = [r.prompt_tokens_mean for r in cmp.rows[:3]]
    assert tokens == sorted(tokens) and tokens[0] < tokens[1] < tokens[2]
    assert cmp.row("retrieval").k == 2
    assert "retrieval" in cmp.table()
    fig = cmp.plot()
    assert len(fig.axes) == 3
    d = cmp.to_dict()
    assert d["rows"][0]["strategy"] == "zero-shot"


def test_answer_budget_fits_the_longest_reference_and_no_more(small_model, monkeypatch):
    from coursekit import evaluate

    model, tok = small_model
    examples = POOL[:12]
    longest = max(len(tok(e["output"], add_special_tokens=False)["input_ids"]) for e in examples)
    assert evaluate.answer_budget(tok, examples) == longest + evaluate.ANSWER_MARGIN
    with pytest.raises(ValueError, match="no examples"):
        evaluate.answer_budget(tok, [])
    seen = []
    real_generate = evaluate.generate
    monkeypatch.setattr(evaluate, "generate", lambda *a, **k: seen.append(k["max_new_tokens"]) or real_generate(*a, **k))
    evaluate.evaluate_task(model, tok, examples[:2])  # the default budget comes from the examples scored
    assert seen == [evaluate.answer_budget(tok, examples[:2])]
