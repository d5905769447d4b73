"""Speed (DESIGN §10): forward, train step and single-step streaming latency per adapter, timed by
pytest-benchmark, one item per (adapter, operation, hidden size), e.g.
`test_speed[torch-lstm-train_step-H256]`. The median lands in the results file as task `speed`
(no gate: a measured item passes) with the FLOP rate in `extras`; `python -m reports compare`
flags slowdowns. Timing needs a serial run: under pytest-xdist pytest-benchmark turns timing off,
and these items skip with that reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from rnn_behaviour.benchmarks.matrix import CellSkipped, Matrix
from rnn_behaviour.benchmarks.records import CELL_PROPERTY, RECORDS_PROPERTY, new_record
from rnn_behaviour.benchmarks.speed import BUDGET, ROUNDS, TASK, VERSION, SpeedItem, flops


def _template(item: SpeedItem, tier: str) -> dict[str, Any]:
    return new_record(item.adapter, TASK, item.check, VERSION, tier, "median_s", 0.0, False)


@pytest.fixture(scope="session")
def inference_models() -> dict[tuple[str, int], Any]:
    """The models whose forward and stream step are timed, one per (adapter, hidden size): both
    items time calls that leave the model as it was, so the second reuses the first's (an engine
    row's model is an export and a conversion, 1-4 s). A train step gets a model of its own."""
    return {}


@pytest.fixture
def timed(
    speed: SpeedItem,
    matrix: Matrix,
    benchmark: Any,
    request: pytest.FixtureRequest,
    inference_models: dict[tuple[str, int], Any],
) -> Callable[[], Any]:
    """The call to time, built and warmed at setup (so a skip reaches the results as a skip)."""
    request.node.user_properties.append((CELL_PROPERTY, {"template": _template(speed, matrix.tier), "seeds": 1}))
    if benchmark.disabled:
        pytest.skip("timing is off (pytest-xdist or --benchmark-disable): run the speed items serially")
    try:
        adapter = matrix.adapter(speed.adapter)
    except CellSkipped as exc:
        pytest.skip(str(exc))
    if speed.op == "train_step" and not adapter.capabilities.training:
        pytest.skip(f"{speed.adapter} does not train (an inference-only row): no train step to time")
    if speed.op == "train_step":
        model = adapter.build(speed.spec(), seed=0)
    else:
        key = (speed.adapter, speed.hidden)
        if key not in inference_models:
            inference_models[key] = adapter.build(speed.spec(), seed=0)
        model = inference_models[key]
    if getattr(model, "padded", False):
        model.padded = False  # timed at the shape asked (the Flax built-ins' checks predict padded: on_jax/model.py)
    data = speed.batch()
    if speed.op == "forward":
        return lambda: model.predict(data.x)
    if speed.op == "stream_step":
        x_t = np.ascontiguousarray(data.x[:, :1])
        _, state = model.predict(x_t)
        return lambda: model.predict(x_t, state)
    make_train_step = getattr(model, "make_train_step", None)
    if make_train_step is None:
        pytest.skip(f"{speed.adapter}'s model has no make_train_step(budget): its train step cannot be timed alone")
    step = make_train_step(BUDGET)
    return lambda: step(data.x, data.y)


@pytest.mark.filterwarnings("ignore:Benchmark fixture was not used")  # a skip at setup
def test_speed(
    speed: SpeedItem, timed: Callable[[], Any], matrix: Matrix, benchmark: Any, request: pytest.FixtureRequest
) -> None:
    benchmark.group = f"{speed.op}-H{speed.hidden}"
    benchmark.pedantic(timed, rounds=ROUNDS[matrix.tier], warmup_rounds=1, iterations=1)
    stats = benchmark.stats.stats
    adapter = matrix.adapter(speed.adapter)
    work = flops(getattr(adapter, "cell", None), speed.op, speed.hidden)
    extras = {"mean_s": stats.mean, "min_s": stats.min, "stddev_s": stats.stddev, "rounds": float(stats.rounds)}
    if work is not None:
        extras |= {"flops": work, "flops_per_s": work / stats.median}
        benchmark.extra_info["flops_per_s"] = work / stats.median
    record = {
        **_template(speed, matrix.tier),
        "passed": True,
        "value": stats.median,
        "detail": f"median of {stats.rounds} rounds after one warm-up",
        "extras": extras,
        "versions": {k: str(v) for k, v in adapter.versions().items()},
        "compute_path": {k: str(v) for k, v in adapter.compute_path().items()},
    }
    request.node.user_properties.append((RECORDS_PROPERTY, [record]))
