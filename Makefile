# `make test` and `make bench` set up .venv from the lock on first use, then run pytest.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Extra pytest arguments, e.g. make bench ARGS="--tier smoke -k torch-lstm"
ARGS ?=

.PHONY: test bench smoke examples nightly calibrate lint dist clean

# The lock, then the suite itself, editable (the `rnn-behaviour` command, code from this checkout).
$(STAMP): requirements.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

# The wheel users install into their own environment: `pip install dist/rnn_behaviour-*.whl`.
dist: $(STAMP)
	rm -rf dist build
	$(PY) -m pip wheel --quiet --disable-pip-version-check --no-deps --no-build-isolation -w dist .
	@ls dist/*.whl

# Self-tests on up to 4 workers (most of their time is subprocess runs of the plugin);
# ARGS="-n 0" runs them in one process, e.g. for --pdb.
# The workflows are linted first (actionlint, from the lock; shellcheck and pyflakes left out so
# that every machine checks the same things).
test: $(STAMP)
	$(VENV)/bin/actionlint -shellcheck= -pyflakes= .github/workflows/*.yml
	$(PY) -m pytest tests -n auto --maxprocesses 4 $(ARGS)

# The matrix on every core (-n auto), then the speed items serially (timing needs a quiet
# machine), in one report (benchmarks/run.py). ARGS="-n 0" runs everything in one process.
bench: $(STAMP)
	$(PY) -m benchmarks.run $(ARGS)

smoke: $(STAMP)
	$(PY) -m benchmarks.run --tier smoke $(ARGS)

# The bring-your-own-RNN examples: each one's smoke row, checked against what examples/README.md
# says about it (examples/verify.py: exactly the documented items fail, for the documented reason).
# Each runs as a user's `rnn-behaviour smoke` does (benchmarks/run.py: the row on every core, then
# its speed items): 8.4 minutes for the six on 2 cores, against 12.5 (pytest time) one core at a time.
EXAMPLES := reports/examples
FORGETS_STATE := --reason "count_steps.carry_state=the state handed back in is ignored" \
	--reason "conformance.streaming=the state passed in is dropped" \
	--reason "conformance.forward_parity=the initial state passed in is ignored" \
	--reason "conformance.gradients=no gradient reaches the initial state" \
	--reason "conformance.long_calls=the state handed from one call to the next does not continue the sequence" \
	--fails count_steps.cold_start alphabet_stateful.from_a alphabet_stateful.cold_start \
	moving_average_stateful.stateful sine_rollout.rollout sine_rollout.beats_persistence \
	streams.online_equals_offline conformance.transplant conformance.gate_order conformance.gradients \
	conformance.chunked_gradients conformance.bad_input conformance.trained_transplant conformance.variable_length \
	conformance.regimes conformance.low_precision n_back.long_stream \
	conformance.long_calls conformance.random_states conformance.saturation
define example
	rm -f $(EXAMPLES)/$(1)/results.json
	-$(PY) -m benchmarks.run --tier smoke -q --adapter $(2) -k "$(1)-" --report-dir $(EXAMPLES)/$(1) $(ARGS)
	$(PY) -m examples.verify $(EXAMPLES)/$(1)/results.json $(3)
endef
examples: $(STAMP)
	$(call example,lstm_loop,torch:examples.lstm_loop:lstm_loop,)
	$(call example,peephole,torch:examples.peephole:peephole,)
	$(call example,mingru,torch:examples.mingru:mingru,--fails \
		n_back.fit n_back.long_stream n_back.forgets parity.fit parity.longer copy_memory.recall copy_memory.longest_delay \
		selective_copy.recall cycle_navigation.fit cycle_navigation.longer --inconclusive sine_rollout.one_step)
	$(call example,keras_cell,keras:examples.keras_cell:keras_cell,)
	$(call example,forgets_state,torch:examples.forgets_state:forgets_state,$(FORGETS_STATE))
	$(call example,jax_lstm,jax:examples.jax_lstm:jax_lstm,)

# The nightly job (.github/workflows/nightly.yml) here, by the same commands: the smoke tier in 2
# shards, merged, compared with the previous local night (reports/nightly/history, git-ignored),
# the leaderboard redrawn over the kept history (reports/nightly/leaderboard). Exit 1 names each
# regression. ARGS go to both shards' pytest, e.g. ARGS="--adapter mine=torch:pkg.rnn:mine".
NIGHTLY := reports/nightly
NIGHTLY_KEEP ?= 60
NIGHTLY_WORKERS ?= 2
nightly: $(STAMP)
	rm -rf $(NIGHTLY)/shard-1 $(NIGHTLY)/shard-2 $(NIGHTLY)/night
	$(PY) -m reports nightly shard 1 2 --tier smoke -o $(NIGHTLY)/shard-1 -- -q -n $(NIGHTLY_WORKERS) $(ARGS)
	$(PY) -m reports nightly shard 2 2 --tier smoke -o $(NIGHTLY)/shard-2 -- -q -n $(NIGHTLY_WORKERS) $(ARGS)
	$(PY) -m reports nightly merge $(NIGHTLY)/shard-1 $(NIGHTLY)/shard-2 --expect 2 -o $(NIGHTLY)/night
	$(PY) -m reports nightly publish $(NIGHTLY)/night --history $(NIGHTLY)/history --keep $(NIGHTLY_KEEP) \
		-o $(NIGHTLY)/leaderboard

# Re-make the calibration tables in tasks/README.md and tasks/calibration.csv: torch over 20
# seeds, keras over 20 (counting) and 10 (the rest), flax over 10 (its tanh RNN on sine_rollout), the smoke
# tier over 10 (LSTM/GRU; only the tasks whose smoke budget differs); then the early stop's table
# (tasks/early_stop.csv) from the smoke runs' loss histories. Hours on 2 cores;
# `scripts/calibrate.py run --tasks ... --adapters ...` re-runs a part of it.
CALIBRATION := reports/calibration
KERAS := keras-lstm,keras-gru,keras-rnn
# The smoke tasks the tanh RNN passes, for the early stop's calibration (tasks/README.md, "Early stop").
RNN_PASSES := adjacent_sum,alphabet_features,alphabet_one_char,alphabet_stateful,moving_average_stateful,streams
SMOKE_TASKS := adding,adjacent_sum,alphabet_features,alphabet_one_char,alphabet_stateful,copy_memory,moving_average_stateful,streams
calibrate: $(STAMP)
	$(PY) scripts/calibrate.py run --tier standard --seeds 20 --adapters torch-lstm,torch-gru,torch-rnn --workers 2 --out $(CALIBRATION)/standard-torch.json
	$(PY) scripts/calibrate.py run --tier standard --seeds 20 --adapters $(KERAS) --tasks count_last,count_steps --workers 2 --out $(CALIBRATION)/standard-count-keras.json
	$(PY) scripts/calibrate.py run --tier standard --seeds 10 --adapters $(KERAS) --workers 2 --out $(CALIBRATION)/standard-keras.json
	$(PY) scripts/calibrate.py run --tier smoke --seeds 10 --adapters torch-lstm,torch-gru,keras-lstm,keras-gru --workers 2 --cell-timeout 0 --out $(CALIBRATION)/smoke-lstm-gru.json
	$(PY) scripts/calibrate.py run --tier smoke --seeds 10 --adapters torch-rnn,keras-rnn --tasks $(RNN_PASSES) --workers 2 --out $(CALIBRATION)/smoke-rnn.json
	$(PY) scripts/calibrate.py run --tier standard --seeds 10 --adapters flax-lstm,flax-gru --workers 2 --out $(CALIBRATION)/standard-flax.json
	$(PY) scripts/calibrate.py run --tier standard --seeds 10 --adapters flax-rnn --tasks sine_rollout --workers 2 --out $(CALIBRATION)/standard-flax-rnn.json
	$(PY) scripts/calibrate.py run --tier smoke --seeds 10 --adapters flax-lstm,flax-gru --tasks $(SMOKE_TASKS) --workers 2 --out $(CALIBRATION)/smoke-flax.json
	$(PY) scripts/calibrate.py table $(CALIBRATION)/standard-torch.json $(CALIBRATION)/standard-keras.json $(CALIBRATION)/standard-count-keras.json $(CALIBRATION)/smoke-lstm-gru.json \
		$(CALIBRATION)/standard-flax.json $(CALIBRATION)/standard-flax-rnn.json $(CALIBRATION)/smoke-flax.json --readme tasks/README.md
	$(PY) scripts/early_stop_calibration.py $(CALIBRATION)/smoke-lstm-gru.json $(CALIBRATION)/smoke-flax.json $(CALIBRATION)/smoke-rnn.json --write

lint: $(STAMP)
	$(PY) -m pip install --quiet ruff mypy
	$(PY) -m ruff check . && $(PY) -m ruff format --check . && $(PY) -m mypy adapters tasks reports benchmarks examples conftest.py

clean:
	rm -rf $(VENV) reports/latest reports/examples .pytest_cache dist build *.egg-info
