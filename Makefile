# callscribe: `make run` starts the embedded default, `make test` runs every check.
# Every pip call goes through constraints.txt (torch==2.13.0: the CPU wheel, never a CUDA build).

PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3)
VENV := .venv
PIP := $(VENV)/bin/python -m pip install --quiet --constraint constraints.txt
# Extras `make test` installs: every one except `gpu` (sglang cannot install on CPU machines);
# funaudio-parity brings the funasr package the FunAudio engine's parity tests compare with.
TEST_EXTRAS := dev,tiny,funaudio,funaudio-parity

.PHONY: run test lint bench system-deps clean

run: $(VENV)/.stamp-run
	$(VENV)/bin/callscribe serve

test: system-deps $(VENV)/.stamp-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pytest

lint: $(VENV)/.stamp-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: system-deps $(VENV)/.stamp-test
	$(VENV)/bin/python -m bench.accuracy

system-deps:
	@scripts/install-system-deps.sh

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 13) else \
		"callscribe needs Python 3.11 or 3.12 (pjsua2 wheels stop at 3.12); set PYTHON=...")'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --constraint constraints.txt --upgrade pip

$(VENV)/.stamp-run: $(VENV)/bin/python pyproject.toml constraints.txt
	$(PIP) -e .
	$(VENV)/bin/callscribe models prepare whisper-base
	@touch $@

$(VENV)/.stamp-test: $(VENV)/bin/python pyproject.toml constraints.txt
	$(PIP) -e '.[$(TEST_EXTRAS)]'
	@touch $@ $(VENV)/.stamp-run

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
