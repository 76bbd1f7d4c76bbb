# pocket-parallel: `make lab` to learn, `make test` to check. Both set up .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
NBVAL  := --nbval --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg
LAB_PORT ?= 8888
# Jupyter refuses to run as root unless told; only containers and CI run as root.
LAB_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: env lab test test-unit test-notebooks demo clean

env: $(STAMP)

# Re-install whenever pyproject.toml changes; the stamp marks a finished install.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "pocket-parallel needs Python 3.10 or newer; $(PYTHON) is " + sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { echo "could not create $(VENV): on Debian/Ubuntu install python3-venv"; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

lab: env
	cd notebooks && ../$(BIN)/jupyter lab --ServerApp.port=$(LAB_PORT) $(LAB_ROOT) $(LAB_ARGS) 00_start_here.ipynb

test: env
	MPLBACKEND=Agg $(BIN)/python -m pytest tests $(NBVAL) notebooks

test-unit: env
	MPLBACKEND=Agg $(BIN)/python -m pytest tests

test-notebooks: env
	MPLBACKEND=Agg $(BIN)/python -m pytest $(NBVAL) notebooks

demo: env
	$(BIN)/python -m pocket_parallel --items 20 --latency 0.2 --concurrency 5

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis
