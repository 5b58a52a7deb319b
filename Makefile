# The two commands: `make demo` and `make test`. Both create .venv when missing and install.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
# torch is pinned in the same pip command as everything that depends on it (an unpinned torch
# pulls gigabytes of CUDA packages).
TORCH  := torch==2.13.0

.PHONY: install demo test test-fast lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24"
	$(PY) -m pip install -q $(TORCH) -e ".[all,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py

# Two test processes (whole files each: their module fixtures start servers and convert models once):
# most tests wait on subprocesses, servers and converters, so two keep both CI cores busy.
test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -n 2 --dist loadfile --durations=25

test-fast: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -n 2 --dist loadfile -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) benchmarks/export_parity.py

clean:
	rm -rf runs .pytest_cache
