# embcompare: every target installs or fetches what it needs, so each works on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXP ?= learning_curve
SWEEP_ARGS ?=
DATASET ?=
# Sweeps run one worker process per core (Hydra's joblib launcher); every run uses `threads`
# TensorFlow and BLAS threads (default 1) whatever N_JOBS, so metrics match N_JOBS=1 exactly
# (run.use_threads); N_JOBS=1 runs them one after another in one process.
N_JOBS ?= $(shell $(PYTHON) -c 'import os; print(len(os.sched_getaffinity(0)))')
LAUNCHER = $(if $(filter-out 1,$(N_JOBS)),hydra/launcher=joblib hydra.launcher.n_jobs=$(N_JOBS))

.PHONY: setup data run sweep report reproduce tune bench pretrain families test test-fast clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# From $$DATA_MIRROR when set, else from the official URLs; sha256 checked either way.
data: setup
	$(BIN)/embcompare data

# One real MR run per embedding setup (GloVe 6B 50d, Kim's CNN, all training examples), then the
# table of runs and a report of them in results/run/report.md.
run: data
	$(BIN)/embcompare run -m name=run dataset=mr embedding=glove-6b-50d model=cnn \
		setup=rand,rand_kim,static,nonstatic,multichannel train.n=all seed=1 train.progress=false \
		$(LAUNCHER)
	$(BIN)/python -m embcompare.analysis.aggregate results/run/runs
	$(BIN)/embcompare report name=run

# The main job: sweep the experiment (EXP=learning_curve by default), then write its report.
# DATASET=mr narrows the sweep to one dataset: make reproduce EXP=kim2014 DATASET=mr
# Runs are deterministic whatever N_JOBS: make reproduce N_JOBS=1 gives the same metrics.
reproduce: sweep report

sweep: data
	$(BIN)/embcompare run -m experiment=$(EXP) $(if $(DATASET),dataset=$(DATASET)) $(LAUNCHER) \
		$(SWEEP_ARGS)

report: setup
	$(BIN)/embcompare report experiment=$(EXP)

# Tune every setup on dev (one Optuna study per setup and n, conf/hparams_search/), run fresh
# seeds with the defaults and the tuned values, then the report: default vs tuned gaps.
TUNE_EXP ?= learning_curve_tuned
tune: data
	$(BIN)/embcompare tune experiment=$(TUNE_EXP) $(LAUNCHER)
	$(BIN)/embcompare report experiment=$(TUNE_EXP)

# Speed figures from one run (epoch times, padding, vector loading, peak memory), printed and
# written to results/bench/bench.json; about 9 minutes here. `make bench BENCH_ARGS=--quick`.
bench: data
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

# Every family of vectors on the 50k unlabelled IMDB reviews, 300d, each from its reference engine
# and trained as Keras Embeddings: word2vec CBOW and skip-gram (gensim, Keras), fastText
# skip-gram (gensim, Keras), GloVe (mittens on the 5,000 most frequent words, Keras); each prints
# its word-similarity scores. Cached: reruns are free. About 4 h of one core here in all.
pretrain: data
	$(BIN)/embcompare pretrain method=gensim corpus=imdb_unsup
	$(BIN)/embcompare pretrain method=gensim sg=1 corpus=imdb_unsup
	$(BIN)/embcompare pretrain method=keras_sgns corpus=imdb_unsup
	$(BIN)/embcompare pretrain method=keras_cbow corpus=imdb_unsup
	$(BIN)/embcompare pretrain method=gensim_fasttext corpus=imdb_unsup
	$(BIN)/embcompare pretrain method=keras_fasttext corpus=imdb_unsup
	$(BIN)/embcompare pretrain method=keras_glove corpus=imdb_unsup
	$(BIN)/embcompare pretrain method=mittens_glove corpus=imdb_unsup

# The families experiment (experiments/families.yaml) on the vectors of `make pretrain`: every
# family static and nonstatic, rand at 300d with both inits, fastText's subword vectors for
# unseen words; then results/families/report.md.
FAMILY_RAND ?= word2vec-sg-imdb-300d
families: pretrain
	$(BIN)/embcompare run -m experiment=families $(LAUNCHER)
	$(BIN)/embcompare run -m experiment=families embedding=$(FAMILY_RAND) setup=rand,rand_kim $(LAUNCHER)
	$(BIN)/embcompare run -m experiment=families embedding=fasttext-imdb-300d,fasttext-keras-imdb-300d \
		embedding.unseen=subwords $(LAUNCHER)
	$(BIN)/embcompare report experiment=families

# Both tiers: ruff, the fast tier (configs composed and tiny runs done in-process) and the slow
# tier (the CLI, launchers and Ray in subprocesses, real training). CI (.ci/run) calls this.
test: data
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest

# The fast tier alone, for the edit-test loop: about a minute.
test-fast: data
	$(BIN)/python -m pytest -m "not slow"

clean:
	rm -rf results/*/runs .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
