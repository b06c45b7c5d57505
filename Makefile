# Two commands do everything on a fresh machine:
#   make demo   set up (if needed) and run the main job on the built-in world
#   make test   set up (if needed) and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# `make test` runs the suite in two worker processes (pytest-xdist), a test file to each at a
# time: much of a test's time is nodes discovering each other and waiting on events, and the
# module fixtures (a demo run, a trained model) are made once. PYTEST_WORKERS=0 runs it in one.
PYTEST_WORKERS ?= 2

.PHONY: setup demo test bench clean

setup:
	@$(PYTHON) tools/setup_env.py --venv $(VENV)

demo: setup
	@$(VENV)/bin/snn-autonomy demo

# pytest's own exit status is kept in $(VENV)/pytest-exit-code for .ci/run.
test: setup
	@$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS); rc=$$?; echo $$rc > $(VENV)/pytest-exit-code; exit $$rc

bench: setup
	@$(VENV)/bin/snn-autonomy bench codec

clean:
	rm -rf $(VENV) .venv-lava build *.egg-info .pytest_cache .hypothesis
