# The two commands a new user needs (see README):
#   make compare   - run the strategy comparison on the embedded default scenario
#   make test      - install everything and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: compare test install bench clean notebooks

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

# Not one of the two commands: re-execute the notebooks at small scale and save their outputs
# into the committed .ipynb files (tests/bench/test_notebooks.py checks they are current).
notebooks: install
	$(BIN)/python experiments/refresh_notebooks.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
