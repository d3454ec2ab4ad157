# postoffice: the two commands of the README, and their helpers.
#   make run   set up .venv, initialise ./var on first use, run the server in the foreground
#   make test  set up .venv with dev tools, then format check, lint, type check and every test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DATA   := var
CONFIG := $(DATA)/postoffice.toml

.PHONY: run test lint typecheck pytest venv dev-venv clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

venv: $(VENV)/.installed
dev-venv: $(VENV)/.installed-dev

run: venv
	@if [ ! -f $(CONFIG) ]; then \
	  $(BIN)/postoffice init --data-dir $(DATA) --domain example.test --hostname mail.example.test \
	    --listen smtp=127.0.0.1:2525 --listen submission=127.0.0.1:2587 \
	    --listen submissions=127.0.0.1:2465 --listen pop3=127.0.0.1:2110 \
	    --listen pop3s=127.0.0.1:2995 --listen imap=127.0.0.1:2143 \
	    --listen imaps=127.0.0.1:2993 --listen http=127.0.0.1:2080 && \
	  echo demo | $(BIN)/postoffice -c $(CONFIG) user add demo@example.test --password-stdin && \
	  echo "root: demo" >> $(DATA)/etc/mail/aliases ; \
	fi
	@echo "demo user: demo@example.test, password: demo (config $(CONFIG); Ctrl-C stops)"
	exec $(BIN)/postoffice -c $(CONFIG) serve

lint: dev-venv
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench

typecheck: dev-venv
	$(BIN)/mypy --strict src

pytest: dev-venv
	$(BIN)/python -m pytest -q

test: lint typecheck pytest

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .mypy_cache .pytest_cache .ruff_cache
