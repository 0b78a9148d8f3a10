"""Lesson 00 (start here): the doctor, the course map, the embedded model and the task data."""
from __future__ import annotations

import json

from coursekit.models import EMBEDDED_MODEL_DIR

TINY_PARAMETERS = 3_475_712  # coursekit/models/tiny/config.json, counted exactly


def check(results: dict) -> None:
    assert results["notebook"] == "00_start_here"
    assert results["device"] in {"cpu", "cuda", "mps"}
    assert results["packages_ok"] is True, "coursekit.doctor() found a required package missing"
    assert results["memory_available_gb"] > 0
    assert results["lessons"] == 7
    if results["model"] == "tiny":
        assert results["n_parameters"] == TINY_PARAMETERS
        # The probe score the notebook measures is the one the model's build recorded; the base model does not
        # know the task yet.
        recipe = EMBEDDED_MODEL_DIR / "recipe.json"
        if recipe.exists():
            recorded = json.loads(recipe.read_text())["general_probe"]
            assert abs(results["probe_score"] - recorded) <= 0.05, (results["probe_score"], recorded)
        assert results["base_answer_matches"] is False
        assert results["chat_template"] is False  # the embedded model reads the ### Instruction template
    elif results["model"] == "smollm2-135m-instruct":
        assert results["n_parameters"] == 134_515_008  # SmolLM2-135M, tied embeddings
        assert results["chat_template"] is True  # the task is shown through the instruct model's chat template
    assert 0.0 <= results["probe_score"] <= 1.0
    assert results["probe_items"] > 0
    sizes = results["split_sizes"]
    assert set(sizes) == {"train", "validation", "test"} and min(sizes.values()) > 0
    assert results["train_examples"] == sizes["train"] > sizes["test"]
