# `make test` and `make bench` set up .venv from the lock on first use, then run pytest.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Extra pytest arguments, e.g. make bench ARGS="--tier smoke -k torch-lstm"
ARGS ?=

.PHONY: test bench smoke calibrate lint clean

$(STAMP): requirements.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest tests $(ARGS)

bench: $(STAMP)
	$(PY) -m pytest benchmarks $(ARGS)

smoke: $(STAMP)
	$(PY) -m pytest benchmarks --tier smoke $(ARGS)

# Re-make the calibration table in tasks/README.md (about 20 minutes on 2 cores).
calibrate: $(STAMP)
	$(PY) scripts/calibrate.py run --tier standard --seeds 20 --out reports/calibration/standard.json
	$(PY) scripts/calibrate.py table reports/calibration/standard.json --readme tasks/README.md

lint: $(STAMP)
	$(PY) -m pip install --quiet ruff mypy
	$(PY) -m ruff check . && $(PY) -m ruff format --check . && $(PY) -m mypy adapters tasks reports benchmarks conftest.py

clean:
	rm -rf $(VENV) reports/latest .pytest_cache
