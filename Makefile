# Two commands for a new user: `make run` starts the instrument, `make test` runs the whole test suite.
# Both set everything up first when needed (system packages when run as root, a venv in .venv).
.PHONY: run test setup clean-venv

run:
	bash scripts/setup.sh
	.venv/bin/python run_synth.py

test:
	bash scripts/test.sh $(ARGS)

setup:
	bash scripts/setup.sh

clean-venv:
	rm -rf .venv
