"""Correct modules that train slower than the built-ins (issue 27): the suite's budgets were
calibrated on one-layer LSTM/GRU, and these must pass at the smoke tier, or be stopped or extended
with the reason, never failed for their budget alone.

    pytest benchmarks/test_behaviour.py --tier smoke -n 2 \
        --adapter torch:tests.slow_modules:two_layer_lstm -k "two_layer_lstm-"

`two_layer_lstm` is `nn.LSTM(num_layers=2)` behind the suite's single-layer state convention
((h, c), each (2, batch, hidden) as nn.LSTM returns them): the same computation as two stacked
loops of examples/lstm_loop.py, at nn.LSTM's speed.

What it gets at smoke: everything passes but `cycle_navigation.longer` (0.948 at length 100, seed 0),
and that is the module's result, not its budget's (measured 2026-12-05, `--seeds 10 -k
"two_layer_lstm-cycle_navigation"`, 24 minutes on one core): over 10 seeds of 3 runs each, no run of
the 30 reached `longer`'s 0.99 on the select walks (0.85-0.97; `fit` at length 40 passes on 9 of 10),
per-step accuracy first falling below 0.99 at steps 27-47 of 100; with every cap four times longer
(`--epochs-scale 4`, seed 0: 400 epochs a run, the kept one extended to 800) it reached 0.973, and
0.899 with the rescue's rates (`--lr-sweep 0.3,3`). A one-layer nn.LSTM keeps about 3 runs in 4.
"""

from __future__ import annotations

from torch import nn


def two_layer_lstm(input_size: int, hidden_size: int) -> nn.LSTM:
    return nn.LSTM(input_size, hidden_size, num_layers=2, batch_first=True)
