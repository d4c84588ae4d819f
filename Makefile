# The README's commands. Each one first runs the idempotent setup (seconds once the environment exists).
PY := .venv/bin/python

.PHONY: setup test demo clean-env

setup:
	bash scripts/setup_env.sh

test: setup
	$(PY) -m pytest tests -q

demo: setup
	bash scripts/demo.sh

clean-env:
	rm -rf .venv
