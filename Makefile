# Two commands do all the set-up: `make run` and `make test`.
# Both create or refresh the virtual environment in .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The sample workspace lives in the repository (ignored by git), so `make run` never
# touches the user's real workspace.
SAMPLE_DB ?= var/sample.sqlite
TORCH_VERSION ?= 2.13.0

.PHONY: venv run sample test lint bench-import clean

venv: $(STAMP)

# torch goes in first and alone: resolved as a dependency of trl/peft it could pull a
# multi-GB CUDA build on a CPU-only machine.
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "torch==$(TORCH_VERSION)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

sample: $(STAMP)
	@mkdir -p $(dir $(SAMPLE_DB))
	@test -f $(SAMPLE_DB) || $(BIN)/chambers --db $(SAMPLE_DB) sample

run: sample
	$(BIN)/chambers --db $(SAMPLE_DB) app

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 \
	  $(BIN)/python -m pytest -q
	$(BIN)/lint-imports
	$(BIN)/ruff check app ui trainer tests benchmarks
	$(BIN)/ruff format --check app ui trainer tests benchmarks

lint: $(STAMP)
	$(BIN)/ruff check app ui trainer tests benchmarks
	$(BIN)/ruff format --check app ui trainer tests benchmarks
	$(BIN)/lint-imports

bench-import: $(STAMP)
	$(BIN)/python benchmarks/import_bench.py

clean:
	rm -rf $(VENV) var .pytest_cache
