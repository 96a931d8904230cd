# The two commands a newcomer needs: `make run` and `make test`.
# Everything else here is what they are made of.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
PORT   ?= 8000
export PORT

.DEFAULT_GOAL := help
.PHONY: help run test test-fast setup setup-dev migrate lint typecheck pytest clean

help:
	@echo "make run   - set up (virtualenv, install, migrate, superuser) and start web + worker"
	@echo "make test  - set up and run lint, types and tests"
	@echo "make test-fast - the edit-test loop: tests without real processes or a browser"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Reinstall only when pyproject.toml changes.
$(VENV)/.installed-runtime: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@ $(VENV)/.installed-runtime

setup: $(VENV)/.installed-runtime migrate
setup-dev: $(VENV)/.installed-dev

migrate: $(VENV)/.installed-runtime
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0

run: setup
	@$(PY) manage.py ensure_superuser
	@echo ""
	@echo "  aisystem is starting:"
	@echo "    chat      http://127.0.0.1:$(PORT)/chat/"
	@echo "    live feed http://127.0.0.1:$(PORT)/live/"
	@echo "    admin     http://127.0.0.1:$(PORT)/admin/"
	@echo "  Stop everything with Ctrl-C."
	@echo ""
	@# aisystem.foreground hands honcho the terminal, so Ctrl-C stops it (status 0), not make.
	@PATH="$(abspath $(BIN)):$$PATH" exec $(PY) -m aisystem.foreground \
		$(BIN)/honcho -f Procfile start --no-colour --port $(PORT)

lint: setup-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-logo

typecheck: setup-dev
	$(BIN)/mypy pipeline telegram_bridge aisystem

pytest: setup-dev
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest

test: setup-dev setup lint typecheck pytest

# For the edit-test loop; `make test` (and CI) still run everything.
test-fast: setup-dev
	$(PY) -m pytest -m "not slow" -x -q

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
