# physgan: `make demo` and `make test` work on a fresh machine with only Python 3 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-slow bench clean

install: $(STAMP)

# Everything pinned by constraints.txt (torch==2.13.0 is the CPU wheel; a looser pin pulls CUDA).
# The editable install compiles the C Monte Carlo kernels in place.
$(STAMP): pyproject.toml setup.py constraints.txt physgan/systems/ising/_kernels.c
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt pip setuptools wheel
	$(BIN)/pip install -q -c constraints.txt --no-build-isolation -e ".[jets,report,test]"
	touch $(STAMP)

# Both quick pipelines (Monte Carlo -> WGAN -> samples -> validation), each to the end whatever its verdict,
# then one line per pipeline; the demo succeeds only when both verdicts pass (`physgan run` exits 0 on PASS,
# 1 on FAIL, 2 on an error).
demo: install
	@$(BIN)/physgan run ising --preset quick --out runs/demo --force; ising=$$?; \
	$(BIN)/physgan run jets --preset quick --out runs/demo_jets --force; jets=$$?; \
	for pair in "ising $$ising runs/demo" "jets $$jets runs/demo_jets"; do \
	  set -- $$pair; \
	  case $$2 in 0) word=PASS;; 1) word=FAIL;; *) word="ERROR (exit $$2)";; esac; \
	  echo "demo: $$1 quick preset: verdict $$word ($$3/report/report.html)"; \
	done; \
	test $$ising = 0 && test $$jets = 0

test: install
	$(BIN)/python -m pytest -q

test-slow: install
	$(BIN)/python -m pytest -q -m slow

bench: install
	$(BIN)/python scripts/bench_ising_mc.py
	$(BIN)/python scripts/bench_sampling.py
	$(BIN)/python scripts/bench_sampling.py --system jets
	$(BIN)/python scripts/bench_validate.py
	$(BIN)/python scripts/bench_jets_mc.py

clean:
	rm -rf $(VENV) build *.egg-info physgan/systems/ising/_kernels*.so
