# pocket-parallel: `make lab` to learn, `make test` to check. Both set up .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# make bench's extra contenders (pyproject's bench extra), installed on first use of make bench.
BENCH_STAMP := $(VENV)/.bench-stamp
NBVAL  := --nbval --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg
LAB_PORT ?= 8888
# Opened in the browser, and printed with its token for --no-browser, remote machines and containers.
LAB_START := lab/tree/00_start_here.ipynb
# The course's own Jupyter settings for its server (no news pop-up; nbgrader's menus and server
# extensions off): read after the user's ~/.jupyter and before the environment's, never written.
LAB_CONFIG := $(CURDIR)/jupyter-config
# Jupyter refuses to run as root unless told; only containers and CI run as root.
LAB_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)
# Tests and notebooks use the local LLM server, never an endpoint the shell names (notebook 08).
NO_ENDPOINT := env -u OPENAI_BASE_URL -u OPENAI_API_KEY -u POCKET_PARALLEL_MODEL -u ANTHROPIC_BASE_URL -u ANTHROPIC_API_KEY -u ANTHROPIC_MODEL
SERVE_PORT ?= 8000
# make serve simulates a provider: SERVE_PROFILE=anthropic or self-hosted, or SERVE_PROFILE= for none
# (the package's plain defaults); SERVE_FLAGS adds or overrides flags, e.g. SERVE_FLAGS="--rpm 60 --quantum 60".
SERVE_PROFILE ?= openai
SERVE_FLAGS ?=
PRESENT_PORT ?= 8866
# The lecture app: Voilà shows this notebook without its code; its settings (loopback only, no
# sources, light theme) are in jupyter-config/voila.json, read through LAB_CONFIG as make lab's are.
PRESENT_APP := present/lecture.ipynb
# The browser test drives this Chromium (Debian's package); Playwright never downloads one.
CHROMIUM ?= /usr/bin/chromium

.PHONY: env lab present test typecheck test-unit test-notebooks test-browser test-nbgrader demo serve bench bench-quick exercises notebooks clean

env: $(STAMP)

# Re-install whenever pyproject.toml changes; the stamp marks a finished install. PYTHONWARNINGS
# hides only setuptools' notice that an editable install was made ("Editable installation."),
# which pip shows in a box like an error; every other warning and error still shows.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "pocket-parallel needs Python 3.10 or newer; $(PYTHON) is " + sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { echo "could not create $(VENV): on Debian/Ubuntu install python3-venv"; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip install --quiet -e '.[dev,present]'
	@touch $(STAMP)

$(BENCH_STAMP): $(STAMP)
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip install --quiet -e '.[dev,present,bench]'
	@touch $(BENCH_STAMP)

# LAB_PORT picks the port (the next free one if taken), LAB_ARGS adds JupyterLab options, e.g.
#   make lab LAB_PORT=9000 LAB_ARGS=--no-browser
lab: env
	@echo "Starting JupyterLab on notebooks/00_start_here.ipynb; its address with the token follows. Stop it with Ctrl-C."
	cd notebooks && JUPYTER_CONFIG_PATH="$(LAB_CONFIG)$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" \
		../$(BIN)/jupyter lab --ServerApp.port=$(LAB_PORT) --LabApp.default_url=/$(LAB_START) $(LAB_ROOT) $(LAB_ARGS)

# The lecture app (Voilà) on 127.0.0.1: PRESENT_PORT picks the port (the next free one if taken),
# PRESENT_ARGS adds Voilà options, e.g.  make present PRESENT_PORT=9000 PRESENT_ARGS=--no-browser
# exec: Ctrl-C reaches Voilà itself, which shuts its kernels down before make returns.
present: env
	@case "$(PRESENT_PORT)" in ''|*[!0-9]*) false;; esac && [ "$(PRESENT_PORT)" -ge 1 ] && [ "$(PRESENT_PORT)" -le 65535 ] \
		|| { echo "PRESENT_PORT must be a port number from 1 to 65535; got '$(PRESENT_PORT)'"; exit 2; }
	@echo "Starting the lecture app ($(PRESENT_APP)) with Voilà; its address follows once it listens. Stop it with Ctrl-C."
	@exec env JUPYTER_CONFIG_PATH="$(LAB_CONFIG)$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" \
		$(BIN)/voila $(PRESENT_APP) --port=$(PRESENT_PORT) $(PRESENT_ARGS)

# Includes the browser test when Chromium is installed, and says so when it is not.
# The type checker and the import contracts first (make typecheck), then every test.
test: env typecheck
	$(NO_ENDPOINT) MPLBACKEND=Agg PP_CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest tests $(NBVAL) notebooks instructor; status=$$?; \
	test -x $(CHROMIUM) || echo "browser test skipped: chromium not installed (apt-get install chromium)"; \
	exit $$status

# The type checker (strict, pyproject's [tool.mypy]) and the import contracts (pyproject's
# [tool.importlinter]: the layers of docs/architecture.md, no circles, private modules kept inside).
typecheck: env
	$(BIN)/python -m mypy
	$(BIN)/lint-imports --no-cache

test-unit: env
	$(NO_ENDPOINT) MPLBACKEND=Agg $(BIN)/python -m pytest tests -m "not browser and not nbgrader"

# The nbgrader round trip on every exercise (about a minute): generate, autograde, export, feedback.
test-nbgrader: env
	MPLBACKEND=Agg $(BIN)/python -m pytest -m nbgrader tests/test_nbgrader_roundtrip.py

# JupyterLab in headless Chromium: runs the explorer, moves a slider, saves docs/explorer.png;
# opens `make lab`'s first notebook, with no news pop-up; and drives `make present`'s lecture app
# at 1280×720 and 1920×1080, saving docs/lecture.png.
test-browser: env
	@test -x $(CHROMIUM) || { echo "make test-browser needs chromium at $(CHROMIUM): apt-get install chromium"; exit 1; }
	MPLBACKEND=Agg PP_CHROMIUM=$(CHROMIUM) PP_SCREENSHOT=docs/explorer.png PP_LECTURE_SCREENSHOT=docs/lecture.png \
		$(BIN)/python -m pytest -s -m browser tests/browser tests/test_make_lab.py tests/test_make_present.py

test-notebooks: env
	$(NO_ENDPOINT) MPLBACKEND=Agg $(BIN)/python -m pytest $(NBVAL) notebooks instructor

demo: env
	$(BIN)/python -m pocket_parallel --items 20 --latency 0.2 --concurrency 5

# The local OpenAI-compatible LLM server, on loopback, simulating OpenAI's limits unless SERVE_PROFILE says
# otherwise (pocket_parallel/service/profiles.py says what each profile sets and why); Ctrl-C stops it.
serve: env
	$(BIN)/python -m pocket_parallel.server --port $(SERVE_PORT) --seed 0 $(if $(SERVE_PROFILE),--profile $(SERVE_PROFILE),) $(SERVE_FLAGS)

# BENCH_ONLY measures only some sections, e.g. make bench-quick BENCH_ONLY=http,at-limit (see --only in
# benchmarks/run.py; a full run keeps the saved numbers of the others).
BENCH_SECTIONS = $(if $(BENCH_ONLY),--only $(BENCH_ONLY),)
# Full benchmark (about 10 min): rewrites benchmarks/results/latest.{md,png} and README's numbers.
bench: env $(BENCH_STAMP)
	MPLBACKEND=Agg $(BIN)/python -m benchmarks.run --update-readme $(BENCH_SECTIONS)

# Small grid in under a minute: prints the table, writes nothing.
bench-quick: env $(BENCH_STAMP)
	MPLBACKEND=Agg $(BIN)/python -m benchmarks.run --quick $(BENCH_SECTIONS)

# Student exercises (notebooks/exercises/) from the instructor notebooks (instructor/exercises/):
# each solution becomes a stub with its hint; both kinds are re-executed and written byte-stable.
exercises: env
	$(BIN)/python tools/make_exercises.py

# Chapter notebooks (notebooks/NN_*.ipynb, NNb_*.ipynb) re-executed on a fresh kernel, outputs stored for nbval.
# NOTEBOOKS="01 06" limits it to some; tools/run_notebooks.py --check shows what would change. It refuses a
# busy machine (one-minute load average at least half the cores) and records the load in each notebook;
# POCKET_PARALLEL_BUSY_OK=1 make notebooks runs anyway, for development (the record then says busy).
notebooks: env
	MPLBACKEND=Agg $(BIN)/python tools/run_notebooks.py $(NOTEBOOKS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis
