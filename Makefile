# pocket-parallel: `make lab` to learn, `make test` to check. Both set up .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
NBVAL  := --nbval --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg
LAB_PORT ?= 8888
# Jupyter refuses to run as root unless told; only containers and CI run as root.
LAB_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)
# Tests and notebooks use the local LLM server, never an endpoint the shell names (notebook 08).
NO_ENDPOINT := env -u OPENAI_BASE_URL -u OPENAI_API_KEY -u POCKET_PARALLEL_MODEL
SERVE_PORT ?= 8000
# The browser test drives this Chromium (Debian's package); Playwright never downloads one.
CHROMIUM ?= /usr/bin/chromium

.PHONY: env lab test test-unit test-notebooks test-browser demo serve bench bench-quick exercises clean

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

# Includes the browser test when Chromium is installed, and says so when it is not.
test: env
	$(NO_ENDPOINT) MPLBACKEND=Agg PP_CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest tests $(NBVAL) notebooks instructor; status=$$?; \
	test -x $(CHROMIUM) || echo "browser test skipped: chromium not installed (apt-get install chromium)"; \
	exit $$status

test-unit: env
	$(NO_ENDPOINT) MPLBACKEND=Agg $(BIN)/python -m pytest tests -m "not browser"

# JupyterLab in headless Chromium: runs the explorer, moves a slider, saves docs/explorer.png.
test-browser: env
	@test -x $(CHROMIUM) || { echo "make test-browser needs chromium at $(CHROMIUM): apt-get install chromium"; exit 1; }
	MPLBACKEND=Agg PP_CHROMIUM=$(CHROMIUM) PP_SCREENSHOT=docs/explorer.png $(BIN)/python -m pytest -s -m browser tests/browser

test-notebooks: env
	$(NO_ENDPOINT) MPLBACKEND=Agg $(BIN)/python -m pytest $(NBVAL) notebooks instructor

demo: env
	$(BIN)/python -m pocket_parallel --items 20 --latency 0.2 --concurrency 5

# The local OpenAI-compatible LLM server with the course's defaults, on loopback; Ctrl-C stops it.
serve: env
	$(BIN)/python -m pocket_parallel.server --port $(SERVE_PORT) --latency 0.5 --rpm 60 --tpm 40000 --max-concurrent 8 --seed 0

# Full benchmark (about 10 min): rewrites benchmarks/results/latest.{md,png} and README's numbers.
bench: env
	MPLBACKEND=Agg $(BIN)/python -m benchmarks.run --update-readme

# Small grid in under a minute: prints the table, writes nothing.
bench-quick: env
	MPLBACKEND=Agg $(BIN)/python -m benchmarks.run --quick

# Student exercises (notebooks/exercises/) from the instructor notebooks (instructor/exercises/):
# each solution becomes a stub with its hint; both kinds are re-executed and written byte-stable.
exercises: env
	$(BIN)/python tools/make_exercises.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis
