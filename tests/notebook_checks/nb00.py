"""Lesson 00 (start here): the doctor, the course map, the embedded model and the task data."""
from __future__ import annotations

TINY_PARAMETERS = 3_475_712  # coursekit/models/tiny/config.json, counted exactly


def check(results: dict) -> None:
    assert results["notebook"] == "00_start_here"
    assert results["device"] in {"cpu", "cuda", "mps"}
    assert results["packages_ok"] is True, "coursekit.doctor() found a required package missing"
    assert results["memory_available_gb"] > 0
    assert results["lessons"] == 7
    if results["model"] == "tiny":
        assert results["n_parameters"] == TINY_PARAMETERS
        # Pretrained on the general corpus, the embedded model answers part of its probe, but not the task.
        assert 0.1 <= results["probe_score"] <= 1.0
        assert results["base_answer_matches"] is False
    assert results["probe_items"] > 0
    sizes = results["split_sizes"]
    assert set(sizes) == {"train", "validation", "test"} and min(sizes.values()) > 0
    assert results["train_examples"] == sizes["train"] > sizes["test"]
