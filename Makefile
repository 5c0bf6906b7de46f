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

# Both quick pipelines (Monte Carlo -> WGAN -> samples -> validation): Ising, with the test Monte Carlo's
# thermodynamics against the exact finite-L solution, and jets, with the W' and QCD summaries of the test
# Monte Carlo and of the generated jets.
demo: install
	$(BIN)/physgan run ising --preset quick --out runs/demo --force
	$(BIN)/physgan observables runs/demo/data/test.h5
	$(BIN)/physgan run jets --preset quick --out runs/demo_jets --force
	$(BIN)/physgan observables runs/demo_jets/data/test.h5
	$(BIN)/physgan observables runs/demo_jets/samples/generated.h5

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
