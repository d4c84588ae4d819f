# The README's commands. Each one first runs the idempotent setup (seconds once the environment exists).
PY := .venv/bin/python

.PHONY: setup test test-fast demo clean-env

setup:
	bash scripts/setup_env.sh

# Two pytest workers with one thread each (pytest-xdist; a file's tests stay in one worker, so its module fixtures
# are built once): on 2 cores the tool subprocesses' start-up and the data loading of one worker overlap the other's
# compute. TEST_WORKERS=0 runs in this process.
TEST_WORKERS ?= 2
test: setup
	OMP_NUM_THREADS=1 $(PY) -m pytest tests -q -n $(TEST_WORKERS) --dist loadfile

# The suite without the tests marked slow (trainings, whole pipelines, tool subprocesses, exports) or distributed
# (gloo process groups): every module's basic behaviour in a few minutes. The markers are in pyproject.toml.
test-fast: setup
	OMP_NUM_THREADS=1 $(PY) -m pytest tests -q -n $(TEST_WORKERS) --dist loadfile -m "not slow and not distributed"

demo: setup
	bash scripts/demo.sh

clean-env:
	rm -rf .venv
