# embcompare: every target installs or fetches what it needs, so each works on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXP ?= learning_curve
SWEEP_ARGS ?=

.PHONY: setup data run sweep report reproduce test clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# From $$DATA_MIRROR when set, else from the official URLs; sha256 checked either way.
data: setup
	$(BIN)/embcompare data

# One real MR run per embedding setup (GloVe 6B 50d, Kim's CNN, all training examples).
run: data
	$(BIN)/embcompare run -m dataset=mr embedding=glove-6b-50d model=cnn \
		setup=rand,static,nonstatic,multichannel train.n=all seed=1 train.progress=false
	$(BIN)/python -m embcompare.aggregate results/adhoc/runs

# The main job: sweep the experiment (EXP=learning_curve by default), then write its report.
reproduce: sweep report

sweep: data
	$(BIN)/embcompare run -m experiment=$(EXP) $(SWEEP_ARGS)

report: setup
	$(BIN)/embcompare report experiment=$(EXP)

test: data
	$(BIN)/ruff check src tests
	$(BIN)/python -m pytest

clean:
	rm -rf results/*/runs .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
