# Fine-tuning LLMs, runnable end to end.
# Quick start:  make course   (runs every lesson headless on the embedded model)
#               make test     (the test suite)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export PYTHONHASHSEED := 0
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM := false
# No MPLBACKEND: a kernel started with MPLBACKEND=Agg shows no plt.show() figure (pytest sets Agg in conftest.py).

.PHONY: setup course course-gpu course-real lab test test-fast test-latest lint doctor clean gpu-check

setup: $(STAMP)

$(STAMP): requirements.txt requirements-models.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, alone: the pinned CPU build installs from the local wheel cache in seconds.
	$(PY) -m pip install -q "$$(grep -E '^torch==' requirements.txt)"
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -r requirements-models.txt
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (coursekit)" >/dev/null
	touch $(STAMP)

course: setup
	$(PY) -m coursekit course --out build/executed

course-gpu: setup
	$(PY) -m coursekit course --out build/executed-gpu --size gpu

# Every lesson on a real pretrained instruct model (SmolLM2-135M-Instruct from PyPI), offline, on the CPU.
# Then each lesson's check module on what the run recorded. Lesson 06 trains its eight methods in one cell: on 2 CPU
# cores the whole lesson took 853 s in one run, and that cell alone ran past the default 900 s in another: 1800.
course-real: setup
	$(PY) -m coursekit course --out build/executed-real --model smollm2-135m-instruct --cell-timeout 1800
	COURSE_RESULTS=build/executed-real $(PY) -m pytest -q -p no:cacheprovider tests/test_notebooks.py -k test_recorded_results

# One call on a CUDA loan machine (no network): installs the carried wheels/, runs every lesson on CUDA, the memory
# estimate against CUDA's peak and QLoRA vs LoRA speed, and writes OUT_DIR/gpu-check.md + .json (default reports/).
# benchmarks/gpu_check.py says which wheels to carry (--download-wheels fetches them). GPU_PYTHON: the interpreter
# with CUDA torch (default python3); BUDGET_S: seconds for the whole run (default 480).
# DRY_RUN=1: the same script here on the CPU at tiny size (default OUT_DIR build/gpu-check-dry).
gpu-check: $(if $(filter 1 yes true,$(DRY_RUN)),setup)
	$(if $(filter 1 yes true,$(DRY_RUN)),$(PY) benchmarks/gpu_check.py --dry-run,$(or $(GPU_PYTHON),python3) benchmarks/gpu_check.py) \
		--out "$(or $(OUT_DIR),$(if $(filter 1 yes true,$(DRY_RUN)),build/gpu-check-dry,reports))" \
		$(if $(BUDGET_S),--budget-s $(BUDGET_S))

lab: setup
	$(VENV)/bin/jupyter lab notebooks/01_why_fine_tune.ipynb

doctor: setup
	$(PY) -m coursekit doctor

test: setup
	$(PY) -m pytest -q -p no:cacheprovider --timeout 900 --durations=25

test-fast: setup
	$(PY) -m pytest -q -m "not slow and not browser" --timeout 600

# The newest Hugging Face stack in a separate environment, every notebook executed.
test-latest:
	test -x .venv-latest/bin/python || $(PYTHON) -m venv .venv-latest
	.venv-latest/bin/python -m pip install -q --upgrade pip
	.venv-latest/bin/python -m pip install -q "$$(grep -E '^torch==' requirements.txt)"
	.venv-latest/bin/python -m pip install -q -r requirements.txt
	.venv-latest/bin/python -m pip install -q --no-deps -r requirements-models.txt
	.venv-latest/bin/python -m pip install -q --upgrade transformers peft trl bitsandbytes datasets accelerate
	.venv-latest/bin/python -m pip install -q --no-deps -e .
	.venv-latest/bin/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	.venv-latest/bin/python -m coursekit doctor || true
	.venv-latest/bin/python -m pytest -q -p no:cacheprovider tests/test_notebooks.py

lint: setup
	$(VENV)/bin/ruff check coursekit tests benchmarks notebooks

clean:
	rm -rf build .pytest_cache
