import json
import subprocess
import sys


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def test_import_coursekit_loads_no_heavy_library():
    out = _run("import sys, coursekit; coursekit.__version__; "
               "print([m for m in ('torch', 'transformers', 'peft', 'trl', 'datasets') if m in sys.modules])")
    assert out.strip() == "[]"


def test_lazy_public_names_resolve():
    import coursekit

    assert callable(coursekit.load_base_model) and callable(coursekit.doctor)
    import pytest

    with pytest.raises(AttributeError, match="no_such_thing"):
        coursekit.no_such_thing  # noqa: B018


def test_cli_lists_commands_and_rejects_unknown():
    ok = subprocess.run([sys.executable, "-m", "coursekit", "--help"], capture_output=True, text=True)
    assert ok.returncode == 0 and "doctor" in ok.stdout and "memory" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "coursekit", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and "known commands" in bad.stderr


def test_doctor_reports_versions_device_and_bitsandbytes():
    res = subprocess.run([sys.executable, "-m", "coursekit", "doctor", "--json"], capture_output=True, text=True)
    report = json.loads(res.stdout)
    assert res.returncode == (0 if report["ok"] else 1)
    names = {p["name"]: p for p in report["packages"]}
    assert names["torch"]["installed"] and names["transformers"]["pinned"]
    assert report["device"] in {"cpu", "cuda", "mps"}
    assert report["bnb_4bit"] is True  # bitsandbytes >= 0.50 runs NF4 on CPU too


def test_the_bitsandbytes_hub_kernel_message_is_kept_and_explained_not_printed():
    """bitsandbytes logs "Failed to load CPU gemm_4bit_forward from kernels-community: ..." on a CPU with
    AVX512-BF16 when it cannot fetch its optional Hub kernel. After ``import coursekit`` that message is kept for the
    doctor, and every other message of the same logger still gets through."""
    import logging

    import coursekit  # noqa: F401  (installs the filter)
    from coursekit import notices

    logger = logging.getLogger(notices.BNB_CPU_LOGGER)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    before = notices.BNB_HUB_KERNEL.seen
    try:
        notices.BNB_HUB_KERNEL.seen = None
        logger.warning("Failed to load CPU gemm_4bit_forward from kernels-community: %s. Please make sure ...",
                       "No module named 'kernels'")
        logger.warning("some other message")
        seen = notices.BNB_HUB_KERNEL.seen
    finally:
        logger.removeHandler(handler)
        notices.BNB_HUB_KERNEL.seen = before
    assert [r.getMessage() for r in records] == ["some other message"]
    assert seen and "No module named 'kernels'" in seen


def test_library_warnings_a_learner_cannot_act_on_are_not_shown_and_others_are():
    """The two warnings raised inside the pinned libraries (coursekit.notices.LIBRARY_WARNINGS) are not shown after
    ``import coursekit``; another warning of the same category still is. In a fresh interpreter: pytest installs its
    own warning filters."""
    code = ("import warnings, coursekit\n"
            "from coursekit.notices import LIBRARY_WARNINGS\n"
            "for category, message, _ in LIBRARY_WARNINGS:\n"
            "    warnings.warn(message + ' (and the rest)', category)\n"
            "warnings.warn('a warning of the learner', FutureWarning)\n"
            "warnings.warn('another one', UserWarning)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    from coursekit.notices import LIBRARY_WARNINGS

    for _, message, _ in LIBRARY_WARNINGS:
        assert message not in res.stderr
    assert "a warning of the learner" in res.stderr and "another one" in res.stderr


def test_doctor_prints_no_library_error_and_explains_the_hub_kernel_when_bitsandbytes_asked_for_it():
    import importlib.util

    import bitsandbytes.functional as F

    res = subprocess.run([sys.executable, "-m", "coursekit", "doctor"], capture_output=True, text=True)
    assert "Failed to load" not in res.stderr, res.stderr
    # bitsandbytes asks for the Hub kernel only on a CPU with AVX512-BF16, and fails only without `kernels`
    asked_and_failed = F.has_avx512bf16() and importlib.util.find_spec("kernels") is None
    assert ("its optional faster kernel is fetched from the Hugging Face Hub" in res.stdout) == asked_and_failed, (
        res.stdout)


def test_doctor_flags_a_missing_required_package(tmp_path, monkeypatch):
    from coursekit import env

    real = env.installed_version
    monkeypatch.setattr(env, "installed_version", lambda n: None if n == "peft" else real(n))
    report = env.doctor()
    assert not report.ok
    assert any("peft" in what and "pip install" in fix for what, fix in report.problems)
    assert "MISSING" in report.table()


def test_results_recorder_writes_json(tmp_path):
    from coursekit.notebook import Results

    r = Results(tmp_path / "out" / "r.json", notebook="99_x")
    r.record(a=1, b=[1.5, 2])
    assert json.loads((tmp_path / "out" / "r.json").read_text()) == {"notebook": "99_x", "a": 1, "b": [1.5, 2]}
    import pytest

    with pytest.raises(ValueError):
        r.record()


def test_count_agrees_the_noun_with_the_number():
    import pytest

    from coursekit.notebook import count

    assert [count(n, "step") for n in (0, 1, 2, 1200)] == ["0 steps", "1 step", "2 steps", "1,200 steps"]
    assert count(1, "query", "queries") == "1 query" and count(3, "query", "queries") == "3 queries"
    for bad in (1.5, "2", True):
        with pytest.raises(TypeError, match="whole number"):
            count(bad, "step")


def test_fact_check_box_quotes_every_line_and_refuses_an_empty_claim():
    import pytest

    from coursekit.notebook import fact_check_markdown

    box = fact_check_markdown("A tutorial: *35 GB*.", "the table, line by line:\n* 39.6 GB")
    assert box == ("> **Fact check.** A tutorial: *35 GB*.\n>\n> **Computed:** the table, line by line:\n"
                   "> * 39.6 GB")
    assert fact_check_markdown("only a claim") == "> **Fact check.** only a claim"
    with pytest.raises(ValueError, match="claim"):
        fact_check_markdown("  ")
    with pytest.raises(ValueError, match="computed"):
        fact_check_markdown("a claim", "")


def test_bf16_only_on_gpus_that_compute_in_it(monkeypatch):
    """A T4 or V100 can hold bf16 tensors (torch.cuda.is_bf16_supported() says True by default) but emulates bf16
    arithmetic; the course trains there in fp32, as on a CPU, and in bf16 from compute capability 8.0."""
    import torch

    from coursekit.env import bf16_supported

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for native in (False, True):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True, n=native: n or
                            including_emulation)
        assert bf16_supported("cuda") is native
    assert bf16_supported("cpu") is False and bf16_supported("mps") is False
