# The two commands a fresh clone needs (each does its own set-up):
#   make demo   run the main job on the embedded default
#   make test   run the test suite
# Set-up: a .venv created if missing, the project installed from this repo's own files.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.adfl-installed

.PHONY: demo test test-all lint native clean setup

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[train,dev]'
	@touch $@

demo: $(STAMP)
	$(BIN)/adfl demo

test: $(STAMP)
	$(BIN)/python -m pytest

test-all: $(STAMP)
	$(BIN)/python -m pytest -m "not gpu"

lint: $(STAMP)
	$(BIN)/ruff check adfl_deploy train export tests benchmarks tools
	$(BIN)/ruff format --check adfl_deploy train export tests benchmarks tools

native:
	cmake -S . -B build
	cmake --build build -j
	cd build && ctest --output-on-failure

clean:
	rm -rf build out .pytest_cache
