# pointlens — the two commands that set up everything on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_OUT ?= demo_out

.PHONY: venv demo test bench fuzz lint screenshot clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/pointlens demo --out $(DEMO_OUT)

test: $(STAMP)
	$(BIN)/python -m pytest

# docs/img/demo_report.png (the README's picture) from the demo report, with the browser test's tooling
screenshot: $(STAMP)
	test -f $(DEMO_OUT)/report.html || $(BIN)/pointlens demo --out $(DEMO_OUT) --quiet
	$(BIN)/python -m pointlens.report.browser $(DEMO_OUT)/report.html docs/img/demo_report.png


# the benchmarks compare with Quantus/scikit-learn (the `peers` extra); `make test` never installs it
PEERS_STAMP := $(VENV)/.installed-peers

$(PEERS_STAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[test,peers]'
	touch $(PEERS_STAMP)

bench: $(PEERS_STAMP)
	$(BIN)/python benchmarks/run_all.py

fuzz: $(STAMP)  # the long fuzz profile: 1,000 hostile files per reader and checkpoint kind (~10 min)
	$(BIN)/python benchmarks/run_all.py fuzz

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache build src/*.egg-info
