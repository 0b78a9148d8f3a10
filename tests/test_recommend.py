"""The decision framework (lesson 01): the questions in order, and the method chosen from the memory estimator."""
import json
from dataclasses import fields

import pytest

import coursekit
from coursekit.memory import ESTIMATED_METHODS, estimate_memory
from coursekit.memory.hardware import gpu_capacity_bytes
from coursekit.recommend import (
    APPROACHES,
    FINE_TUNE_GOALS,
    GOALS,
    METHOD_SETTINGS,
    QUESTIONS,
    SCENARIOS,
    STEPS,
    Answers,
    Recommendation,
    choose_method,
    claimed_recommend_peft_method,
    question_choices,
    recommend,
    recommend_method,
)

# Everything that leads to fine-tuning, on a small architecture (fast to count on the meta device).
READY = dict(num_examples=5000, goal="format", prompting_exhausted=True, model="smollm2-135m", gpu="T4")
GIB = 2**30
T4 = 15_360 * 2**20  # a T4 as nvidia-smi reports it (ECC on): 15,360 MiB = 15.0 GiB, not 16e9 bytes


def estimate(model, method, **run):
    settings = dict(batch_size=1, seq_len=512, rank=16, checkpointing=True, **METHOD_SETTINGS[method])
    settings.update(run)
    return estimate_memory(model, method, **settings).total_bytes


def test_exported_lazily_from_coursekit():
    assert coursekit.recommend_method is recommend_method


def test_the_framework_as_data_is_complete():
    assert [s["goal"] for s in SCENARIOS] == list(FINE_TUNE_GOALS)  # the six scenarios, in order
    assert set(FINE_TUNE_GOALS) < set(GOALS)
    keys = [q.key for q in QUESTIONS]
    assert keys.index("few_shot_works") < keys.index("needs_external_knowledge") < keys.index("num_examples") \
        < keys.index("goal") < keys.index("prompting_exhausted")
    assert keys == [f.name for f in fields(Answers)][: len(keys)]  # every question is a field, in order
    assert set(METHOD_SETTINGS) == set(ESTIMATED_METHODS)  # priced with the estimator's own methods
    assert "RTX 4090" in question_choices(next(q for q in QUESTIONS if q.key == "gpu"))
    assert "llama-3.1-8b" in question_choices(next(q for q in QUESTIONS if q.key == "model"))


def test_few_shot_that_works_stops_at_the_first_question():
    rec = recommend_method(**{**READY, "few_shot_works": True})
    assert (rec.approach, rec.method) == ("prompting", None)
    assert len(rec.trail) == 1 and rec.trail[0]["outcome"] == "in-context learning"
    assert not rec.fine_tune


def test_few_shot_that_works_still_fine_tunes_for_latency_and_cost():
    rec = recommend_method(**{**READY, "few_shot_works": True, "goal": "latency_cost"})
    assert rec.approach == "fine-tune" and rec.method is not None
    assert "shorten the prompt" in rec.reasons[0]


def test_knowledge_goes_to_retrieval():
    rec = recommend_method(**{**READY, "goal": "facts", "knowledge_changes_often": True})
    assert rec.approach == "rag" and rec.method is None
    assert "retraining every week" in rec.reasons[-1]
    rec = recommend_method(**{**READY, "goal": "facts"})
    assert rec.approach == "rag"


def test_behaviour_plus_documents_is_the_hybrid():
    rec = recommend_method(**{**READY, "needs_external_knowledge": True, "goal": "style"})
    assert rec.approach == "fine-tune + rag" and rec.method in ("lora", "qlora", "full")
    assert any("retrieval index" in c for c in rec.cautions)


@pytest.mark.parametrize("n, text", [(0, "under 500"), (499, "under 500"), (500, "rule of thumb of 1,000"),
                                     (999, "rule of thumb of 1,000")])
def test_too_little_data_means_prompting(n, text):
    rec = recommend_method(**{**READY, "num_examples": n})
    assert rec.approach == "prompting" and rec.method is None
    assert text in rec.reasons[-1]
    assert recommend_method(**{**READY, "num_examples": 1000}).approach == "fine-tune"


def test_a_generalist_is_not_fine_tuned():
    rec = recommend_method(**{**READY, "goal": "general"})
    assert rec.approach == "rag + prompting"


def test_no_metric_or_untried_prompting_goes_back_to_prompting():
    rec = recommend_method(**{**READY, "has_eval_metric": False})
    assert rec.approach == "prompting" and "evaluation set" in rec.reasons[-1]
    rec = recommend_method(**{**READY, "prompting_exhausted": False})
    assert rec.approach == "prompting" and "not exhausted" in rec.reasons[-1]
    assert rec.trail[-1]["outcome"] == "try prompting harder"


def test_memory_figures_are_the_estimators():
    rec = recommend_method(**READY)
    for method in ("full", "lora", "qlora"):
        assert rec.memory_bytes[method] == estimate("smollm2-135m", method)
        assert rec.fits[method] == (rec.memory_bytes[method] <= T4)
    assert rec.gpu_capacity_bytes == T4
    assert rec.memory_bytes["qlora"] < rec.memory_bytes["lora"] < rec.memory_bytes["full"]
    # the run settings reach the estimator
    longer = recommend_method(**READY, seq_len=2048, batch_size=4)
    assert longer.memory_bytes["lora"] == estimate("smollm2-135m", "lora", seq_len=2048, batch_size=4)
    assert longer.memory_bytes["lora"] > rec.memory_bytes["lora"]


def test_the_method_switches_exactly_where_the_estimate_crosses_the_gpu():
    lora = estimate("smollm2-135m", "lora")
    qlora = estimate("smollm2-135m", "qlora")
    full = estimate("smollm2-135m", "full")
    assert recommend_method(**{**READY, "gpu": (lora + 1) / GIB}).method == "lora"  # a size in GiB
    assert recommend_method(**{**READY, "gpu": (lora - 1) / GIB}).method == "qlora"
    assert recommend_method(**{**READY, "gpu": (qlora + 1) / GIB}).method == "qlora"
    short = recommend_method(**{**READY, "gpu": (qlora - 1) / GIB})
    assert short.method is None and short.approach == "fine-tune"
    assert "Even QLoRA needs" in short.reasons[-1] and "smallest listed GPU" in short.reasons[-1]
    assert short.smallest_gpu["qlora"] == "T4"
    # full fine-tuning only when asked for top quality and it fits
    assert recommend_method(**{**READY, "gpu": (full + 1) / GIB, "max_quality": True}).method == "full"
    assert recommend_method(**{**READY, "gpu": (full + 1) / GIB}).method == "lora"
    assert recommend_method(**{**READY, "gpu": (full - 1) / GIB, "max_quality": True}).method == "lora"
    several = recommend_method(**{**READY, "gpu": (full + 1) / GIB, "max_quality": True, "multiple_tasks": True})
    assert several.method == "lora" and any("one adapter per task" in c for c in several.cautions)


def test_a_common_recommenders_examples_checked_with_the_estimator():
    """A common tutorial's recommend_peft_method with its 'GB per billion' rules, redone with exact architectures."""
    ready = {k: v for k, v in READY.items() if k not in ("model", "gpu")}
    # (8B, 24 GB): the tutorial says LoRA; the estimate agrees
    r = recommend_method(**ready, model="llama-3.1-8b", gpu="RTX 4090")
    assert r.method == "lora" and r.memory_bytes["lora"] < gpu_capacity_bytes("RTX 4090") == 24_564 * 2**20
    # (70B, 80 GB): the tutorial says QLoRA; the estimate agrees
    r = recommend_method(**ready, model="llama-3.1-70b", gpu="A100 80GB")
    assert r.method == "qlora" and r.memory_bytes["lora"] > 80 * GIB > r.memory_bytes["qlora"]
    # (7B, 24 GB, several tasks): the tutorial prints "Adapter Layers" but its own code returns LoRA first
    r = recommend_method(**ready, model="llama-2-7b", gpu="RTX 4090", multiple_tasks=True)
    assert r.method == "lora" and any("one adapter per task" in c for c in r.cautions)



def test_the_quoted_recommender_returns_what_its_code_says_not_what_it_prints():
    assert claimed_recommend_peft_method(8, 24, "moderate", False)["method"] == "LoRA"  # printed: LoRA, rank 16
    assert claimed_recommend_peft_method(8, 24, "moderate", False)["rank"] == 16
    assert claimed_recommend_peft_method(70, 80, "complex", False)["method"] == "QLoRA"  # printed: QLoRA
    # printed "Adapter Layers"; the code returns the first recommendation, LoRA
    third = claimed_recommend_peft_method(7, 24, "simple", True)
    assert third == {"method": "LoRA", "rank": 8, "reason": "Base model fits in memory; fastest training"}
    # a 7B model that misses the LoRA rule gets nothing: the QLoRA branch wants more than 7 billion
    assert claimed_recommend_peft_method(7, 12, "moderate", False)["method"] == "none"
    assert claimed_recommend_peft_method(7.5, 12, "moderate", False)["method"] == "QLoRA"


def test_capacities_are_binary_and_shown_in_gib():
    # 70B LoRA at 512 tokens: 146.4e9 bytes = 136.4 GiB. An H200 holds 143,771 MiB = 140.4 GiB (150.8e9 bytes): it
    # fits, which a capacity of "141 GB" (141e9 bytes) denied.
    ready = {k: v for k, v in READY.items() if k not in ("model", "gpu")}
    r = recommend_method(**ready, model="llama-3.1-70b", gpu="H200")
    assert 141e9 < r.memory_bytes["lora"] <= r.gpu_capacity_bytes == 143_771 * 2**20
    assert r.fits["lora"] and r.method == "lora" and r.smallest_gpu["lora"] == "H200"
    assert "it fits one H200 (140.4 GiB)" in r.reasons[-1] and " GB" not in r.reasons[-1]
    assert "on H200 (140.4 GiB)" in r.memory_table().splitlines()[0]
    # the smallest listed GPU is named with its capacity
    r = recommend_method(**ready, model="llama-3.2-3b", gpu="RTX 4090", max_quality=True)
    big = r.smallest_gpu["full"]
    assert r.method == "lora" and big and r.memory_bytes["full"] <= gpu_capacity_bytes(big)
    assert f"smallest GPU that holds it: {big} ({gpu_capacity_bytes(big) / GIB:.1f} GiB)" in r.reasons[-1]


def test_the_result_is_plain_data_and_readable():
    rec = recommend_method(**READY)
    assert isinstance(rec, Recommendation) and rec.approach in APPROACHES
    d = json.loads(json.dumps(rec.to_dict()))
    assert d["method"] == rec.method and set(d["memory_bytes"]) == {"full", "lora", "qlora"}
    text = rec.summary()
    assert text.startswith(f"Recommendation: fine-tune with {rec.method}")
    assert "does not fit" in text or "fits" in text
    assert [t["question"] for t in rec.trail][-1] == "Which method fits the hardware?"


@pytest.mark.parametrize("kwargs, message", [
    ({"goal": "vibes"}, "unknown goal 'vibes'; allowed: style"),
    ({"num_examples": -1}, "non-negative integer"),
    ({"num_examples": 10.5}, "non-negative integer"),
    ({"few_shot_works": "yes"}, "few_shot_works must be True or False"),
    ({"max_quality": 1}, "max_quality must be True or False"),
    ({"gpu": "GTX 9000"}, "unknown GPU 'GTX 9000'; known: T4"),
    ({"gpu": -3}, "positive, finite number of GiB"),
    ({"gpu": float("inf")}, "positive, finite number of GiB"),
    ({"gpu": ["T4"]}, "GPU name .* or a number of GiB"),
    ({"model": "no-such-model"}, "no-such-model"),
    ({"rank": 0}, "rank must be a positive integer"),
    ({"seq_len": True}, "seq_len must be a positive integer"),
])
def test_bad_input_says_what_is_allowed(kwargs, message):
    with pytest.raises(ValueError, match=message):
        recommend_method(**{**READY, **kwargs})


def test_answers_are_a_dataclass_and_the_keywords_its_fields():
    answers = Answers(**READY)
    assert recommend(answers).to_dict() == recommend_method(**READY).to_dict() == recommend_method(answers).to_dict()
    # keywords after an Answers change some of its fields
    assert recommend_method(answers, goal="facts").approach == "rag"
    assert Answers().goal == "style" and Answers().rank == 16  # recommend_method's defaults
    with pytest.raises(ValueError, match="unknown answer.*'colour'"):
        recommend_method(colour="red")
    with pytest.raises(ValueError, match="rank must be a positive integer"):
        Answers(rank=0)
    with pytest.raises(ValueError, match="must be a coursekit.recommend.Answers"):
        recommend_method({"goal": "style"})


def test_each_step_is_a_small_function_that_stops_or_goes_on():
    rec = recommend(Answers(**READY))
    assert len(STEPS) == 6 and len(rec.trail) == len(STEPS) + 1  # every step asked, then the method
    # a step alone: data_step stops with the fallback when data is short, and goes on otherwise
    from coursekit.recommend import _priced, data_step

    short = Answers(**{**READY, "num_examples": 10})
    assert data_step(short, _priced(short)).approach == "prompting"
    assert data_step(Answers(**READY), _priced(Answers(**READY))) is None
    method, reason = choose_method(Answers(**READY), rec)
    assert method == rec.method and reason == rec.reasons[-1]
