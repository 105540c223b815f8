# The two commands a new user needs (see README):
#   make compare   - run the strategy comparison on the embedded default scenario
#   make test      - install everything and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: compare test install bench clean

$(BIN)/flashsim: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/flashsim

install: $(BIN)/flashsim

compare: install
	$(BIN)/flashsim compare

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
