"""benchmarks/gpu_check.py: the GPU-loan kit. The CPU dry run writes the full report format (so the kit cannot rot
between loans); the bookkeeping that reports a cut-short run (skipped and stopped rows, with reasons) is checked on
made-up results."""
from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
SECTIONS = ("## Environment", "## Parts and time boxes", "## Lessons (papermill", "## Memory estimate vs measured peak",
            "## QLoRA vs LoRA time per step", "## Not verified by this run")
ROW_STATUSES = {"measured", "skipped", "stopped", "oom", "failed"}


def _load():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gpu_check = _load()


def _measured(method, arch, ckpt, seq, error, seconds=1.0):
    measured = 1_000_000_000
    return {"type": "grid_row", "method": method, "arch": arch, "checkpointing": ckpt, "seq_len": seq,
            "status": "measured", "estimated_bytes": int(measured * (1 + error)), "measured_bytes": measured,
            "reserved_bytes": measured + 50_000_000, "error": error, "seconds": seconds}


def test_grid_covers_every_model_and_method_at_the_first_settings():
    cfg = gpu_check.CONFIGS["cuda"]
    points = gpu_check.grid_points(cfg)
    g = cfg["grid"]
    assert len(points) == len(g["archs"]) * len(g["methods"]) * 2 * 2 == 36
    first = points[: len(g["archs"]) * len(g["methods"])]
    assert {(p["arch"], p["method"]) for p in first} == {(a, m) for a in g["archs"] for m in g["methods"]}
    assert {"smollm2-135m", "llama-3.2-1b", "llama-3.2-3b"} <= set(g["archs"])
    assert set(g["seq_lens"]) == {512, 2048} and set(g["checkpointing"]) == {False, True}


def test_a_part_stopped_at_its_time_box_reports_every_row_it_did_not_finish():
    cfg = gpu_check.CONFIGS["cuda"]
    events = [_measured("full", "smollm2-135m", False, 512, 0.02), _measured("lora", "smollm2-135m", False, 512, -0.04),
              {"type": "grid_row", "method": "qlora", "arch": "smollm2-135m", "checkpointing": False, "seq_len": 512,
               "status": "skipped", "reason": "time box: 3 s left, a smollm2-135m qlora row takes about 9 s here"}]
    done = {"killed": True, "exit_code": -15, "seconds": 120.0, "events": events, "tail": []}
    out = gpu_check.grid_result(cfg, done, 120.0)
    assert out["status"] == "stopped" and "time box" in out["reason"]
    assert len(out["rows"]) == 36 and out["measured"] == 2
    assert all(r["status"] in ROW_STATUSES for r in out["rows"])
    assert all(r.get("reason") for r in out["rows"] if r["status"] != "measured")
    assert [r["status"] for r in out["rows"][2:5]] == ["skipped", "stopped", "skipped"]
    assert out["summary"]["runs"] == 2 and math.isclose(out["summary"]["worst_abs_error"], 0.04)
    assert out["goal"]["met"] and out["goal"]["verdict"] == "met on 2 of 36 rows"
    assert math.isclose(out["rows"][0]["allocator_slack"], 0.05)


def test_the_goal_verdict_names_the_rows_that_miss():
    rows = [_measured("full", "a", False, 512, 0.01), _measured("lora", "a", False, 512, 0.03),
            _measured("qlora", "a", True, 2048, -0.14)]
    for r in rows:
        r.pop("type")
    s = {"runs": 3, "median_abs_error": 0.03, "worst_abs_error": 0.14, "worst": "qlora a"}
    v = gpu_check.goal_verdict(rows, s)
    assert v["median_met"] and not v["worst_met"] and not v["met"] and v["verdict"] == "not met"
    assert [m["method"] for m in v["misses"]] == ["qlora"]
    assert v["by_group"]["qlora, checkpointing on"]["worst_abs_error"] == pytest.approx(0.14)


def test_lessons_are_split_into_lanes_of_about_equal_budget():
    lanes = gpu_check.lesson_lanes(gpu_check.CONFIGS["cuda"])
    assert len(lanes) == 2
    everything = sorted(n for lane in lanes for n in lane)
    assert everything == sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert all(lane == sorted(lane) for lane in lanes)
    assert gpu_check.lesson_lanes(gpu_check.CONFIGS["dry-run"]) == [["00_start_here"]]


def test_lessons_not_finished_in_time_are_reported_with_a_reason():
    cfg = {**gpu_check.CONFIGS["cuda"], "lanes": [["00_start_here", "02_memory_math"], ["01_why_fine_tune"]]}
    ok = {"type": "notebook", "notebook": "00_start_here", "status": "ok", "seconds": 20.0, "error": "",
          "key_figures": {"device": "cuda"}, "results": {"device": "cuda"}}
    killed = {"killed": True, "exit_code": -15, "seconds": 300.0, "events": [ok], "tail": []}
    lane2 = {"killed": False, "exit_code": 0, "seconds": 100.0, "tail": [],
             "events": [{"type": "notebook", "notebook": "01_why_fine_tune", "status": "failed", "seconds": 99.0,
                         "error": "TypeError: boom (cell [7])", "key_figures": {}, "results": {}},
                        {"type": "done"}]}
    out = gpu_check.lessons_result(cfg, [killed, lane2], 300.0)
    assert [(n["notebook"], n["status"]) for n in out["notebooks"]] == [
        ("00_start_here", "ok"), ("01_why_fine_tune", "failed"), ("02_memory_math", "stopped")]
    assert all(n["reason"] for n in out["notebooks"][1:])
    assert out["ok"] == 1 and out["failed"] == 1 and out["not_run"] == 1
    assert out["status"] == "stopped" and [lane["status"] for lane in out["lanes"]] == ["stopped", "ok"]
    skipped = gpu_check.lessons_result(cfg, [], 0.0, "cannot execute notebooks: papermill missing")
    assert [n["status"] for n in skipped["notebooks"]] == ["skipped"] * 3 and skipped["status"] == "skipped"
    assert skipped["notebooks"][0]["reason"] == "cannot execute notebooks: papermill missing"


def test_slimmed_bitsandbytes_wheel_keeps_only_the_chosen_builds(tmp_path):
    wheel = tmp_path / "bitsandbytes-0.50.2-py3-none-manylinux_2_24_x86_64.whl"
    names = ["bitsandbytes/__init__.py", "bitsandbytes/libbitsandbytes_cpu.so", "bitsandbytes/libbitsandbytes_cuda128.so",
             "bitsandbytes/libbitsandbytes_cuda130.so", "bitsandbytes/libbitsandbytes_rocm64.so"]
    with zipfile.ZipFile(wheel, "w") as z:
        for n in names:
            z.writestr(n, b"x" * 1000)
        z.writestr("bitsandbytes-0.50.2.dist-info/RECORD", "".join(f"{n},sha256=abc,1000\n" for n in names))
    before, after = gpu_check.slim_bitsandbytes(wheel, ("130",))
    assert after < before
    assert gpu_check.bitsandbytes_builds(wheel) == ["cpu", "cuda130"]
    with zipfile.ZipFile(wheel) as z:
        record = z.read("bitsandbytes-0.50.2.dist-info/RECORD").decode()
    assert "cuda128" not in record and "rocm64" not in record and "cuda130" in record
    w = gpu_check.wheels_report(tmp_path)
    assert w["files"][0]["native_builds"] == ["cpu", "cuda130"] and w["total_bytes"] == wheel.stat().st_size
    assert w["limit_bytes"] == 64 * 2**20


@pytest.mark.slow
def test_dry_run_writes_the_report_and_its_json(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--out", str(out), "--work",
                           str(tmp_path / "work")], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "CPU dry run" in proc.stdout

    text = (out / "gpu-check.md").read_text()
    assert text.startswith("# GPU check: CPU dry run (no GPU figures)")
    assert "**This is a CPU dry run**" in text and "none of them is a GPU measurement" in text
    for section in SECTIONS:
        assert section in text, section
    assert (out / "gpu-check.log").stat().st_size > 0

    report = json.loads((out / "gpu-check.json").read_text())
    assert report["dry_run"] is True and report["mode"] == "cpu-dry-run" and "none is a GPU figure" in report["note"]
    assert report["environment"]["cuda"] is False and "device_name" not in report["environment"]
    assert 0 < report["seconds"] <= report["budget_s"] + 30
    parts = report["parts"]
    assert set(parts) == {"lessons", "memory_grid", "qlora_speed"}
    for p in parts.values():
        assert p["status"] in {"ok", "stopped", "skipped", "crashed"} and _finite(p["box_s"])

    lessons = parts["lessons"]
    assert [n["notebook"] for n in lessons["notebooks"]] == ["00_start_here"]
    assert [lane["notebooks"] for lane in lessons["lanes"]] == [["00_start_here"]]
    assert lessons["parameters"] == {"SIZE": "cpu", "DEVICE": "cpu", "MODEL": "tiny"}
    for n in lessons["notebooks"]:
        assert n["status"] == "ok" or n["reason"]
    if lessons["ok"]:
        assert n["results"]["device"] == "cpu"
        assert (out / "gpu-check-notebooks.zip").exists()

    grid = parts["memory_grid"]
    assert len(grid["rows"]) == grid["planned"] == 12
    assert grid["measured"] >= 1, grid["rows"]
    for r in grid["rows"]:
        assert r["status"] in ROW_STATUSES, r
        if r["status"] == "measured":
            assert _finite(r["error"]) and r["estimated_bytes"] > 0 and r["measured_bytes"] > 0
            assert abs(r["error"]) < 1.0  # a tensor-level tracker at tiny size: the estimator is close
            assert r["reserved_bytes"] is None  # no allocator on a CPU: nothing made up
        else:
            assert isinstance(r.get("reason"), str) and r["reason"], r
    s, goal = grid["summary"], grid["goal"]
    assert s["runs"] == grid["measured"] and _finite(s["median_abs_error"]) and _finite(s["worst_abs_error"])
    assert goal["median_goal"] == 0.05 and goal["worst_goal"] == 0.10 and isinstance(goal["met"], bool)
    assert "median |error|" in text and goal["verdict"] in text

    speed = parts["qlora_speed"]
    if speed["status"] == "ok":
        assert set(speed["runs"]) == {"lora", "qlora"}
        assert all(_finite(r["seconds_per_step"]) and r["seconds_per_step"] > 0 for r in speed["runs"].values())
        assert _finite(speed["qlora_time_per_step_relative_to_lora"])
        assert all("peak_memory_bytes" not in r for r in speed["runs"].values())
    else:
        assert speed["reason"] and speed.get("missing")

    assert any("CPU dry run" in u for u in report["unverified"])
    assert any("64 MiB" in u for u in report["unverified"])


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
