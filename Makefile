# The README's two commands: `make run` and `make test`. Both set everything up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
CHROMIUM ?= /usr/bin/chromium

.PHONY: install model index run test browser eval bench docs clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# The pinned CPU build of torch first, so nothing can pull a CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

model: install
	$(BIN)/qa model prepare

index: model
	test -e var/index/manifest.json || $(BIN)/qa build

# Prepares the model and builds the default index when missing, then serves.
run: model
	$(BIN)/qa serve --build-missing

# Debian's Chromium for the browser test (no browser download: the network is closed).
browser:
	@test -x $(CHROMIUM) || { echo "installing chromium for the browser test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: model browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

eval: index
	$(BIN)/qa eval --report reports/eval

bench: index
	$(BIN)/qa bench

# Measure every labelled set again and write the figures in docs/ from the reports (about 15 minutes).
SHARED := ../shared
docs: index
	$(BIN)/qa eval --json eval/reports/questions.json --report eval/reports
	$(BIN)/qa eval --dataset $(SHARED)/data/regs_dev.jsonl --corpus $(SHARED)/corpus/regs --json eval/reports/regs_dev.json --report eval/reports
	$(BIN)/qa eval --dataset eval/data/tables.jsonl --corpus eval/data/tables --json eval/reports/tables.json --report eval/reports
	$(BIN)/qa eval --squad $(SHARED)/data/cmrc2018_trial.json --json eval/reports/cmrc2018_trial.json --report eval/reports
	$(BIN)/qa eval --squad $(SHARED)/data/drcd_test.json --json eval/reports/drcd_test.json --report eval/reports
	$(BIN)/qa docs

clean:
	rm -rf var reports .pytest_cache
