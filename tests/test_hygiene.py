"""Repository hygiene: notebooks stripped, parameterised and paired with their py:percent file; ruff clean."""
from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

from coursekit import colab

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
IDS = [p.stem for p in NOTEBOOKS]
REQUIRED_PARAMETERS = {"MODEL", "DEVICE", "SIZE", "SEED", "RESULTS_PATH"}


def _cells(nb):
    return [(c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", ()))) for c in nb.cells]


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no .ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_has_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; run nbstripout {path.relative_to(ROOT)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_first_code_cell_is_parameters(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{path.name} has no code cell"
    assert "parameters" in code[0].metadata.get("tags", []), \
        f"{path.name}: the first code cell must be tagged 'parameters' (# %% tags=[\"parameters\"])"
    names = {t.id for node in ast.parse(code[0].source).body if isinstance(node, ast.Assign)
             for t in node.targets if isinstance(t, ast.Name)}
    missing = REQUIRED_PARAMETERS - names
    assert not missing, f"{path.name}: the parameters cell does not set {sorted(missing)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_pair_in_sync(path):
    py = path.with_suffix(".py")
    assert py.is_file(), f"{path.name} has no py:percent pair {py.name}; run jupytext --set-formats ipynb,py:percent"
    from_py = jupytext.read(py, fmt="py:percent")
    from_ipynb = jupytext.read(path)
    a, b = _cells(from_py), _cells(from_ipynb)
    fix = f"run: jupytext --to ipynb {py.relative_to(ROOT)}  (or jupytext --sync)"
    assert len(a) == len(b), f"{path.name}: {len(b)} cells, {py.name}: {len(a)}; {fix}"
    for i, (x, y) in enumerate(zip(a, b)):
        assert x == y, f"{path.name} cell {i} differs from {py.name}: {y[1][:80]!r} vs {x[1][:80]!r}; {fix}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_opens_with_colab_badge_and_install_cell(path):
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and colab.colab_url(path.stem) in first.source, \
        f"{path.name}: the first cell must hold coursekit.colab.badge_markdown({path.stem!r})"
    code = [c for c in nb.cells if c.cell_type == "code"]
    # The same code as coursekit.colab.INSTALL_CELL (comments may differ).
    assert len(code) > 1 and _same_code(code[1].source, colab.INSTALL_CELL), \
        f"{path.name}: the cell after 'parameters' must be coursekit.colab.INSTALL_CELL"


def _same_code(a: str, b: str) -> bool:
    try:
        return ast.dump(ast.parse(a)) == ast.dump(ast.parse(b))
    except SyntaxError:
        return False


def test_readme_course_map_lists_every_notebook_with_badges():
    readme = (ROOT / "README.md").read_text()
    for path in NOTEBOOKS:
        assert f"notebooks/{path.name}" in readme, f"README's course map does not list {path.name}"
        assert colab.colab_url(path.stem) in readme, f"README has no Colab badge for {path.name}"


def test_readme_cpu_times_and_the_lesson_map_agree():
    """The course map's measured CPU times (README, seconds: on the embedded model and on the real one) and the
    minutes lesson 00 shows (coursekit.lessons) are the same measurements: the minutes are the seconds rounded up to
    the next half minute."""
    import math
    import re

    from coursekit.lessons import LESSONS

    readme = (ROOT / "README.md").read_text()
    for lesson in LESSONS:
        row = next((line for line in readme.splitlines() if line.startswith(f"| [{lesson.number} ")), None)
        assert row, f"README's course map has no row for lesson {lesson.number}"
        for column, field in ((2, "cpu_minutes"), (3, "real_cpu_minutes")):
            cpu_time = row.split(" | ")[column]
            seconds = re.fullmatch(r"([\d,]+) s", cpu_time)
            assert seconds, f"lesson {lesson.number}: README's CPU times should be measured seconds, got {cpu_time!r}"
            minutes = math.ceil(int(seconds.group(1).replace(",", "")) / 30) / 2
            assert getattr(lesson, field) == minutes, (lesson.number, field, cpu_time, getattr(lesson, field))


def test_the_gpu_the_course_map_names_holds_full_fine_tuning_of_the_real_model():
    """README's and lesson 00's "CUDA GPU, N GiB+" is at least the estimator's full fine-tuning of SmolLM2-135M at
    batch 4 x 512 (the real-size path), counted in GiB as GPU memory is; both places say the same."""
    import re

    from coursekit.lessons import LESSONS
    from coursekit.memory import estimate_memory

    needed_gib = estimate_memory("smollm2-135m", "full", batch_size=4, seq_len=512).total_bytes / 2**30
    readme = (ROOT / "README.md").read_text()
    named = 0
    for lesson in LESSONS:
        row = next(line for line in readme.splitlines() if line.startswith(f"| [{lesson.number} "))
        assert row.split(" | ")[4] == lesson.hardware, (lesson.number, row.split(" | ")[4], lesson.hardware)
        gpu = re.match(r"CUDA GPU, (\d+) GiB\+", lesson.hardware)
        if gpu:
            named += 1
            assert int(gpu.group(1)) >= needed_gib, (lesson.number, lesson.hardware, f"{needed_gib:.2f} GiB needed")
    assert named >= 4, "lessons 03-06 name the GPU they need"
    assert f"({needed_gib:.1f} GiB)" in readme, "README's real-size sentence quotes the estimate in GiB"


def test_ruff_passes_on_the_code_and_the_lessons():
    """coursekit, the tests, the benchmarks and the lessons' paired py:percent files (a syntax error in a lesson is
    caught here, before a notebook runs)."""
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.fail("ruff is not installed (it is pinned in requirements.txt)")
    proc = subprocess.run([ruff, "check", "coursekit", "tests", "benchmarks", "notebooks"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ------------------------------------------------------------------------------------------ figures come from code
# A figure in a lesson's Markdown is typed by hand and cannot follow the measurement; figures belong in code cells
# (f-strings rendered with ipd.Markdown) so they are the numbers the notebook just measured. A decimal number, a
# percentage or a whole number of three digits or more in a Markdown cell fails this test unless it is listed here
# with what it is: a setting, a model's name, a library's constant, arithmetic spelled out in the sentence, or a
# quoted claim (checked in the lesson's code). Years in citations (1990-2030) and lesson numbers are not figures.
PROSE_FIGURE = re.compile(r"(?<![\w.,\-/])(\d+(?:,\d{3})*(?:\.\d+)?\s?%|\d+(?:,\d{3})*\.\d+)(?![\w.\-/]*\w)")
PROSE_WHOLE = re.compile(r"(?<![\w.,\-/])(\d{1,3}(?:,\d{3})+|\d{3,})(?![\w.\-/]*\w)")
ALLOWED_PROSE_FIGURES = {
    ("01_why_fine_tune", "(1,000+ good examples is the usual rule of thumb"): "a quoted rule of thumb",
    ("01_why_fine_tune", "under 500 the usual advice"): "a quoted rule of thumb",
    ("01_why_fine_tune", "10,000 ticket/reply pairs"): "the scenario: the task's training split (tests/test_data.py)",
    ("01_why_fine_tune", "500 ms retrieval + 1000 tokens"): "a quoted claim, checked in the lesson's code",
    ("01_why_fine_tune", "0 ms retrieval + 200 tokens"): "a quoted claim, checked in the lesson's code",
    ("02_memory_math", "Llama 3.1 8B"): "a model's name",
    ("02_memory_math", "tiles of 4,096 tokens × 32,768 vocabulary entries"):
        "TRL's tile sizes (test_quoted_library_constants)",
    ("02_memory_math", "an RTX 4090 up to 24"): "a GPU's name and the quoted helper's threshold",
    ("02_memory_math", "with torch 2.8 or later"): "the torch version from which TrainingArguments' optim defaults to "
                                                   "adamw_torch_fused (transformers/training_args.py)",
    ("02_memory_math", "two up to 160"): "the quoted helper's threshold, checked in the lesson's code",
    ("03_full_fine_tuning", "a cosine schedule with 10% warmup, weight decay 0.01"): "the recipe's settings",
    ("03_full_fine_tuning", "about 10% of the steps"): "a rule of thumb for a setting",
    ("03_full_fine_tuning", "to 0.1 and 0.5"): "values to try",
    ("03_full_fine_tuning", "costs 512 positions of compute"): "the quoted recipe's max_length",
    ("05_qlora", "compute capability 8.0 and later"): "where torch.cuda.is_bf16_supported(including_emulation=False) "
                                                      "answers True (major >= 8)",
    ("05_qlora", "140 GB for a 70B model"): "arithmetic: 70 billion weights × 2 bytes",
    ("05_qlora", "32 / 64 = 0.5 bits per weight: 12.5% on top of the 4 bits"): "arithmetic spelled out",
    ("05_qlora", "in blocks of 256"): "bitsandbytes' block size for the constants (test_quoted_library_constants)",
    ("05_qlora", "(4,096 by default)"): "bitsandbytes' min_8bit_size (test_quoted_library_constants)",
    ("05_qlora", "at least 100,000 elements are"): "bitsandbytes' paging threshold (test_quoted_library_constants)",
    ("05_qlora", "a 256-wide layer is 2,048"): "arithmetic spelled out",
    ("05_qlora", "rank 8 times 4,096"): "a 7B model's width (Llama 2 7B's hidden size)",
    ("06_peft_comparison", "one sequence of 2,048 tokens"): "the setting of the estimate",
}


def _prose_figures(patterns=(PROSE_FIGURE, PROSE_WHOLE)):
    """(notebook, figure, the Markdown around it) for every decimal, percentage or whole number of three digits or
    more in a Markdown cell."""
    for path in sorted((ROOT / "notebooks").glob("*.py")):
        for cell in jupytext.read(path).cells:
            if cell.cell_type != "markdown":
                continue
            text = re.sub(r"`[^`]*`", "", cell.source)  # code spans: names and settings, not figures
            text = re.sub(r"\$\$.*?\$\$|\$[^$]*\$", "", text, flags=re.S)  # formulas
            text = re.sub(r"\]\([^)]*\)", "]", text)  # link targets
            flat = " ".join(text.split())
            for pattern in patterns:
                for m in pattern.finditer(flat):
                    if pattern is PROSE_WHOLE and re.fullmatch(r"(199\d|20[0-2]\d|2030)", m.group(0)):
                        continue  # a year
                    yield path.stem, m.group(0), flat[max(0, m.start() - 80): m.end() + 80]


def test_figures_in_markdown_come_from_code():
    loose = [(nb, figure, around) for nb, figure, around in _prose_figures()
             if not any(nb == allowed_nb and phrase in around and figure in phrase
                        for allowed_nb, phrase in ALLOWED_PROSE_FIGURES)]
    assert not loose, ("figures typed by hand in Markdown (render them from variables in a code cell, or list them "
                       "in ALLOWED_PROSE_FIGURES with what they are):\n" + "\n".join(map(str, loose)))


def test_allowed_prose_figures_are_still_there():
    found = list(_prose_figures())
    stale = [key for key in ALLOWED_PROSE_FIGURES
             if not any(nb == key[0] and key[1] in around and figure in key[1] for nb, figure, around in found)]
    assert not stale, f"allow-list entries no longer in the lessons (remove them): {stale}"


def test_the_figure_pattern_catches_what_it_should():
    assert [m.group(0) for m in PROSE_FIGURE.finditer("kept 84% of the probe, 0.56 at r=64, loss 1,234.5")] == [
        "84%", "0.56", "1,234.5"]
    assert not list(PROSE_FIGURE.finditer("Llama-3.2-3B, fp32, lesson 03, 4-bit, v0.50, peft 0.21.2"))
    assert [m.group(0) for m in PROSE_WHOLE.finditer("trained 480 tickets in 1,200 steps on 16 cores")] == [
        "480", "1,200"]
    assert not list(PROSE_WHOLE.finditer("lesson 03, 70B, A100 80GB, 1,024-token, 4-bit"))


def test_quoted_library_constants():
    """The library constants lessons 02 and 05 quote in prose are the pinned libraries' own."""
    import inspect

    import bitsandbytes.functional as bnb_functional
    from bitsandbytes.optim.optimizer import Optimizer2State
    from trl.kernels import chunked_logprob
    from trl.trainer import utils as trl_utils

    assert chunked_logprob.TOKEN_CHUNK_SIZE == 4096 and trl_utils._CHUNKED_LOGPROB_CHUNK_SIZE == 32768
    assert inspect.signature(Optimizer2State.__init__).parameters["min_8bit_size"].default == 4096
    assert "p.numel() < 1e5" in inspect.getsource(Optimizer2State.get_state_buffer)  # smaller state is not paged
    source = inspect.getsource(bnb_functional.quantize_4bit)
    assert "blocksize = 64" in source  # the default block of weights (blocksize=None)
    assert "blocksize=256" in source  # the block of constants in the nested (double) quantization


# ------------------------------------------------------------------------------------------------ function length
# Project issue 15: no function in coursekit over MAX_FUNCTION_LINES (ast: end_lineno - lineno + 1, docstring
# included; methods and nested functions too) unless the line right above its ``def`` (or above its decorators) is
# a ``# long: <reason>`` comment.
MAX_FUNCTION_LINES = 60


def _long_functions(source: str, filename: str = "<string>", limit: int = MAX_FUNCTION_LINES):
    """``(file:line, name, length)`` for every function of ``source`` over ``limit`` lines without a reason."""
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        length = node.end_lineno - node.lineno + 1
        if length <= limit:
            continue
        first = min([node.lineno] + [d.lineno for d in node.decorator_list])
        above = lines[first - 2].strip() if first >= 2 else ""
        if re.fullmatch(r"# long:\s*\S.*", above):
            continue
        found.append((f"{filename}:{node.lineno}", node.name, length))
    return sorted(found, key=lambda f: int(f[0].rsplit(":", 1)[1]))  # in line order


def test_functions_are_short_or_say_why():
    offenders = []
    for path in sorted((ROOT / "coursekit").rglob("*.py")):
        offenders += _long_functions(path.read_text(), str(path.relative_to(ROOT)))
    assert not offenders, (f"functions over {MAX_FUNCTION_LINES} lines (split them, or put a '# long: <reason>' "
                           "comment right above the def):\n" + "\n".join(f"  {where} {name}: {n} lines"
                                                                         for where, name, n in offenders))


def test_long_function_check_catches_what_it_should():
    def body(n, indent="    "):
        return "".join(f"{indent}x{i} = {i}\n" for i in range(n))

    source = "\n".join([
        "def too_long():\n" + body(60),  # 61 lines with the def
        "# long: a reason\ndef excused():\n" + body(60),
        "# long: a reason\n@staticmethod\n@property\ndef decorated():\n" + body(60),
        "# long:\ndef no_reason_given():\n" + body(60),
        "# long: the comment is not right above\n\ndef gap():\n" + body(60),
        "def short():\n" + body(59),  # 60 lines: at the limit
        "class C:\n    def method(self):\n" + body(60, " " * 8),
        "def outer():\n    # long: nested, excused\n    def inner():\n" + body(60, " " * 8) + "    return inner\n",
    ])
    found = _long_functions(source, "synthetic.py")
    assert [(name, n) for _, name, n in found] == [
        ("too_long", 61), ("no_reason_given", 61), ("gap", 61), ("method", 61), ("outer", 64)], found
    assert found[0][0] == "synthetic.py:1"
