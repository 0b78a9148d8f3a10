"""The `params` and `memory` commands: a stable JSON contract, exit 2 with a message on bad input."""
import json
import subprocess
import sys


def run(*args):
    return subprocess.run([sys.executable, "-m", "coursekit", *args], capture_output=True, text=True, timeout=120)


def test_params_json_llama_31_8b_lora():
    r = run("params", "llama-3.1-8b", "--lora-rank", "16", "--targets", "all-linear", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["trainable_parameters"] == 41_943_040
    assert out["total_parameters"] == 8_030_261_248 + 41_943_040  # as peft counts "all params" after wrapping


def test_memory_json_contract():
    r = run("memory", "llama-3.1-8b", "--method", "qlora", "--rank", "16", "--batch", "2", "--seq", "1024",
            "--no-checkpointing", "--attention", "eager", "--gpu", "T4", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out["components"]) == {"weights", "adapter_weights", "gradients", "optimizer", "activations", "overhead"}
    assert out["trainable_parameters"] == 41_943_040
    assert out["total_bytes"] >= max(out["components"].values())
    assert out["gpu"]["capacity_bytes"] == 15_360 * 2**20  # a T4 as nvidia-smi reports it: 15,360 MiB
    assert out["gpu"]["fits"] == (out["total_bytes"] <= out["gpu"]["capacity_bytes"])


def test_memory_text_compares_with_the_gpu_in_gib():
    r = run("memory", "llama-3.2-1b", "--method", "full", "--precision", "amp-bf16", "--gpu", "RTX 4090")
    assert r.returncode == 0, r.stderr
    # 23.5 GiB (25.3e9 bytes) fits the 24 GiB card
    assert "RTX 4090 (24.0 GiB): fits, headroom +0.47 GiB (+0.50 GB)" in r.stdout, r.stdout
    r = run("memory", "llama-3.2-1b", "--method", "full", "--precision", "amp-bf16", "--gpu", "23.5")
    assert r.returncode == 0 and "23.5 GiB: does not fit, headroom -0.02 GiB" in r.stdout, r.stdout


def test_bad_input_exits_2_with_message():
    r = run("memory", "tiny", "--method", "lora", "--targets", "qkv")
    assert r.returncode == 2 and "q_proj" in r.stderr
    r = run("memory", "tiny", "--gpu", "Voodoo")
    assert r.returncode == 2 and "unknown GPU" in r.stderr and "A100 80GB" in r.stderr
    r = run("memory", "tiny", "--gpu", "-8")
    assert r.returncode == 2 and "positive, finite number of GiB" in r.stderr
