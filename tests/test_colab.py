"""The Colab install cell's logic, run with a stand-in ``google.colab`` module."""
from __future__ import annotations

import sys
import types

import pytest

from coursekit import colab
from coursekit.env import pinned_versions

# What a Colab runtime typically has: its own CUDA torch and Jupyter, an older transformers, no peft/trl/bnb.
COLAB_LIKE = {"torch": "2.8.0+cu126", "transformers": "4.57.1", "tokenizers": "0.22.1", "accelerate": "1.11.0",
              "datasets": "4.0.0", "safetensors": "0.6.2", "psutil": "5.9.5", "peft": None, "trl": None,
              "bitsandbytes": None, "faker": None}


@pytest.fixture
def fake_colab(monkeypatch):
    calls = []
    output = types.ModuleType("google.colab.output")
    output.enable_custom_widget_manager = lambda: calls.append("widgets")
    google = types.ModuleType("google")
    mod = types.ModuleType("google.colab")
    mod.output = output
    google.colab = mod
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", mod)
    monkeypatch.setitem(sys.modules, "google.colab.output", output)
    return calls


def test_install_plan_is_pins_of_what_differs_and_never_torch_or_jupyter():
    pins = pinned_versions()
    plan = colab.install_plan(COLAB_LIKE)
    names = {p.split("==")[0] for p in plan}
    assert {"transformers", "peft", "trl", "bitsandbytes", "datasets", "accelerate"} <= names
    assert not names & colab.NEVER_INSTALL
    assert "torch" not in names and "jupyterlab" not in names and "ipywidgets" not in names
    for p in plan:
        name, version = p.split("==")
        assert pins[name] == version
    already = dict(COLAB_LIKE, peft=pins["peft"], trl=pins["trl"] + "+local")
    names_after = {p.split("==")[0] for p in colab.install_plan(already)}
    assert "peft" not in names_after and "trl" not in names_after


def test_install_plan_never_installs_torch_even_if_pinned():
    plan = colab.install_plan({"torch": None, "peft": None}, pins={"torch": "2.13.0", "peft": "0.21.2"})
    assert plan == ["peft==0.21.2"]


def test_setup_on_colab_installs_enables_widgets_and_switches_model(fake_colab):
    commands = []
    result = colab.setup("tiny", "auto", "cpu", run=lambda cmd, check: commands.append(cmd),
                         installed=COLAB_LIKE, cuda=True)
    assert result == (colab.REAL_SMALL_MODEL, "cuda", "gpu")
    assert len(commands) == 1 and commands[0][:4] == [sys.executable, "-m", "pip", "install"]
    assert any(a.startswith("trl==") for a in commands[0]) and not any(a.startswith("torch") for a in commands[0])
    assert fake_colab == ["widgets"]
    # No GPU, or COLAB_MODEL = "tiny": the embedded model stays.
    noop = lambda cmd, check: None  # noqa: E731
    assert colab.setup("tiny", "auto", "cpu", run=noop, installed=COLAB_LIKE, cuda=False) == ("tiny", "auto", "cpu")
    assert colab.setup("tiny", "auto", "cpu", colab_model="tiny", run=noop, installed=COLAB_LIKE,
                       cuda=True) == ("tiny", "auto", "cpu")


def test_setup_outside_colab_does_nothing():
    assert "google.colab" not in sys.modules

    def fail(*a, **k):
        raise AssertionError("must not install outside Colab")

    assert colab.setup("tiny", "auto", "cpu", run=fail, installed=COLAB_LIKE, cuda=True) == ("tiny", "auto", "cpu")
    with pytest.raises(ValueError, match="colab_model"):
        colab.setup("tiny", colab_model="")


def test_install_cell_runs_with_stand_in_colab(fake_colab, monkeypatch):
    commands = []
    monkeypatch.setattr("subprocess.run", lambda cmd, check: commands.append(cmd))
    monkeypatch.setattr(colab, "install_plan", lambda installed=None: ["trl==1.16.0"])
    ns = {"MODEL": "tiny", "DEVICE": "auto", "SIZE": "cpu"}
    exec(colab.install_cell_text(), ns)
    assert "--no-deps" in commands[0] and any("git+https://github.com/" in a for a in commands[0])
    assert commands[1][-1] == "trl==1.16.0"
    assert ns["COLAB_MODEL"] == colab.REAL_SMALL_MODEL
    assert ns["MODEL"] in ("tiny", colab.REAL_SMALL_MODEL)


def test_badges_point_at_the_notebook():
    md = colab.badge_markdown("02_memory_math")
    assert f"colab.research.google.com/github/{colab.REPOSITORY}/blob/main/notebooks/02_memory_math.ipynb" in md
    assert "mybinder.org/v2/gh/" in md and "lab/tree/notebooks/02_memory_math.ipynb" in md
    with pytest.raises(ValueError, match="two-digit number"):
        colab.badge_markdown("memory_math")
