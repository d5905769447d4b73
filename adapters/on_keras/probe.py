"""The load-time probe of a Keras layer factory: a bad factory, output or state is a usage error
before anything trains, and what it learns (cell, weight access, number of states) drives conformance."""

from __future__ import annotations

import inspect
import os
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from rnn_behaviour.adapters.base import (
    AdapterError,
)
from rnn_behaviour.adapters.custom import (
    PROBE_BATCH,
    PROBE_HIDDEN,
    PROBE_INPUT,
    PROBE_TIME,
    cell_from_keys,
    cell_from_rows,
    declared_stateless,
    first_line,
    read_declaration,
)
from rnn_behaviour.adapters.reference import (
    N_STATES,
    VARIANTS,
    has_recurrent_bias,
    needs_recurrent_bias,
)
from rnn_behaviour.tasks.base import Budget, ModelSpec

Factory = Callable[..., keras.layers.Layer]

# --- loading: the probe that makes a bad layer a usage error before anything trains ------------

#: Keras's gate blocks, named canonically: LSTM i,f,c,o (c is g); GRU z,r,h (h is n).
KERAS_GATES: dict[str, tuple[str, ...]] = {"lstm": ("i", "f", "g", "o"), "gru": ("z", "r", "n"), "rnn": ("h",)}


@dataclass(frozen=True)
class LayerInfo:
    """What the load-time probe learned: the number of state tensors, and how weight conformance
    can reach the layer's weights (`access` "standard" cell variables, canonical "export", or
    None and `why_not`); whether its canonical layout has bh_* (`recurrent_bias`: Keras's reset-after
    GRU only) and its cell's `variant` ("reset_before" for a `GRU(reset_after=False)`; an exporting
    layer's own `variant` attribute)."""

    n_states: int
    cell: str | None
    access: str | None
    why_not: str
    recurrent_bias: bool = False
    variant: str = ""
    #: Why the layer cannot run padded batches ("" when its call takes a `mask` like keras.layers.LSTM).
    mask_why_not: str = ""
    #: What the factory or its layer declares (`rnn_behaviour_capabilities`, adapters/custom.py).
    declared: dict[str, bool | str] = field(default_factory=dict)
    #: Each state's shape without the batch, at the probe's units (PROBE_HIDDEN): (units,) for an
    #: LSTM's; other shapes (an LMU's memory) are read again at each model's units.
    state_shapes: tuple[tuple[int, ...], ...] = ()

    def units_only(self) -> bool:
        """Whether every state is (batch, units), as for keras.layers.LSTM."""
        return all(shape == (PROBE_HIDDEN,) for shape in self.state_shapes)


def _shapes(values: Any) -> list[tuple[int, ...]]:
    return [tuple(getattr(v, "shape", ())) for v in values]


def probe_layer(factory: Factory, target: str) -> LayerInfo:
    """Build the layer once at the probe's sizes and run it eagerly: the factory's signature, the
    output and state shapes, the state handed back and the keyword arguments the model needs are
    checked here, each failure one AdapterError saying what was expected and what came back.
    Python's and NumPy's global RNG state is left as it was."""
    i, h, b, t = PROBE_INPUT, PROBE_HIDDEN, PROBE_BATCH, PROBE_TIME
    kept = random.getstate(), np.random.get_state()
    try:
        return _probe(factory, target, i, h, b, t)
    finally:
        random.setstate(kept[0])
        np.random.set_state(kept[1])


def _make(factory: Factory, target: str, h: int, **kwargs: Any) -> keras.layers.Layer:
    made = f"{target}({h}, {', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
    try:
        layer = factory(h, **kwargs)
    except TypeError as exc:
        raise AdapterError(
            f"calling {made} raised {first_line(exc)}; a keras factory is factory(units, **layer_kwargs) and "
            "passes return_sequences, return_state, stateful and name on to the layer"
        ) from None
    except Exception as exc:
        raise AdapterError(f"calling {made} raised {first_line(exc)}") from None
    if not isinstance(layer, keras.layers.Layer):
        raise AdapterError(f"{made} returned {type(layer).__name__}, not a keras.layers.Layer")
    return layer


def _run(layer: keras.layers.Layer, call: str, x: np.ndarray, **kwargs: Any) -> list[Any]:
    try:
        out = layer(x, **kwargs)
    except Exception as exc:
        raise AdapterError(f"{call} raised {first_line(exc)}") from None
    if not isinstance(out, list | tuple) or len(out) < 2:
        raise AdapterError(
            f"{call} returned {_shapes([out] if not isinstance(out, list | tuple) else out)}: one tensor, where "
            "return_state=True asks for [y, *states]"
        )
    return list(out)


def _probe(factory: Factory, target: str, i: int, h: int, b: int, t: int) -> LayerInfo:
    x = np.random.default_rng(0).normal(size=(b, t, i)).astype(np.float32)
    layer = _make(factory, target, h, return_sequences=True, return_state=True)
    declared = read_declaration(target, factory, layer)
    if declared_stateless(declared) is not None:
        raise AdapterError(
            f"{target} declares no state: that is supported for torch modules only; a Keras layer returns its "
            "states with return_state=True (declare stateful_training off if it cannot carry them across batches)"
        )
    call = f"{target}({h}, return_sequences=True, return_state=True) on x of shape {(b, t, i)}"
    y, *states = _run(layer, call, x)
    if tuple(y.shape) != (b, t, h):
        raise AdapterError(f"{call} returned y of shape {tuple(y.shape)}; expected {(b, t, h)} = (batch, time, units)")
    if any(len(s.shape) < 2 or s.shape[0] != b for s in states):
        raise AdapterError(
            f"{call} returned states of shapes {_shapes(states)}; expected each batch first, (batch, ...) with "
            f"batch {b}, such as {(b, h)} = (batch, units)"
        )
    again = _run(layer, f"the state is not accepted back: {call[: call.index(' on x')]} with initial_state=", x[:, :1],
                 initial_state=states)  # fmt: skip
    if _shapes(again[1:]) != _shapes(states):
        raise AdapterError(
            f"fed its own state back, {target}'s layer returned states of shapes {_shapes(again[1:])}, not "
            f"{_shapes(states)}"
        )
    last = _make(factory, target, h, return_sequences=False, return_state=True)
    call_last = f"{target}({h}, return_sequences=False, return_state=True) on x of shape {(b, t, i)}"
    y_last = _run(last, call_last, x)[0]
    if tuple(y_last.shape) != (b, h):
        raise AdapterError(f"{call_last} returned y of shape {tuple(y_last.shape)}; expected {(b, h)} (last step only)")
    if declared.get("stateful_training", True) is True:
        _make(factory, target, h, return_sequences=True, stateful=True, name="probe_stateful")
    cell, access, why_not = _weight_access(layer, i, h)
    recurrent_bias, variant = False, ""
    if cell is not None:
        recurrent_bias, variant = _layout(layer, cell, access)
        if variant not in VARIANTS[cell]:
            forms = ", ".join(repr(v) for v in VARIANTS[cell])
            cell, access, why_not = None, None, f"its variant {variant!r} is not one of the {cell}'s ({forms})"
        elif needs_recurrent_bias(cell, variant) and not recurrent_bias:
            why_not = "its export has no bh_*, which a reset-after GRU needs (variant 'reset_before'?)"
            cell, access = None, None
    if cell is not None and len(states) != N_STATES[cell]:
        n = N_STATES[cell]
        why_not = f"its weights read as {cell.upper()} weights, but it has {len(states)} state tensor(s), not {n}"
        cell, access = None, None
    if cell is not None and any(tuple(s.shape) != (b, h) for s in states):
        why_not = (
            f"its weights read as {cell.upper()} weights, but its states are {_shapes(states)}, not (batch, units)"
        )
        cell, access = None, None
    mask_why_not = _mask_support(layer, call, x, states)
    shapes = tuple(tuple(int(d) for d in s.shape[1:]) for s in states)
    return LayerInfo(len(states), cell, access, why_not, recurrent_bias, variant, mask_why_not, declared, shapes)


def _layout(layer: keras.layers.Layer, cell: str, access: str | None) -> tuple[bool, str]:
    """(whether the canonical layout has bh_*, the variant) of a layer whose weights were read."""
    if access == "export":
        return has_recurrent_bias(layer.export_weights()), str(getattr(layer, "variant", "") or "")
    reset_before = cell == "gru" and len(tuple(layer.cell.bias.shape)) == 1
    return cell == "gru" and not reset_before, "reset_before" if reset_before else ""


def _mask_support(layer: keras.layers.Layer, call: str, x: np.ndarray, states: list[Any]) -> str:
    """'' when the layer's call takes a `mask` and runs a right-padded one of unsorted lengths with
    an initial state (y and states of the usual shapes); else why not, in words. Keras drops a
    mask that `call` does not take, so the signature decides before the run."""
    if "mask" not in inspect.signature(layer.call).parameters:
        return f"its layer does not take a mask ({type(layer).__name__}.call{inspect.signature(layer.call)})"
    b, t = x.shape[0], x.shape[1]
    lengths = [1 + (k * (t - 1)) // max(b - 1, 1) for k in range(b)]
    mask = np.arange(t)[None, :] < np.asarray(lengths)[:, None]
    try:
        out = layer(x, initial_state=states, mask=mask)
    except Exception as exc:
        return f"its layer does not run a mask ({call} with a mask of lengths {lengths} raised {first_line(exc)})"
    shapes = _shapes(out) if isinstance(out, list | tuple) else _shapes([out])
    if shapes != [(b, t, PROBE_HIDDEN), *_shapes(states)]:
        return f"{call} with a mask of lengths {lengths} returned shapes {shapes}, not those it returns without one"
    return ""


def _weight_access(layer: keras.layers.Layer, input_size: int, hidden_size: int) -> tuple[str | None, str | None, str]:
    cell = getattr(layer, "cell", None)
    variables = [getattr(cell, name, None) for name in ("kernel", "recurrent_kernel", "bias")]
    trainable = layer.trainable_weights
    if all(v is not None for v in variables):
        kernel, recurrent, bias = (tuple(getattr(v, "shape", ())) for v in variables)
        rows = kernel[-1]
        kind = cell_from_rows(rows, hidden_size)
        extra = [v.path for v in trainable if not any(v is w for w in variables)]
        if extra:
            return (
                None,
                None,
                (
                    f"its cell has Keras's kernel/recurrent_kernel/bias but also {', '.join(extra)}: not a plain "
                    "LSTM/GRU/RNN cell, so the reference equations do not apply"
                ),
            )
        bias_ok = bias == (rows,) or (kind == "gru" and bias == (2, rows))  # GRU: reset_after=False, True
        if kind is None or kernel != (input_size, rows) or recurrent != (hidden_size, rows) or not bias_ok:
            return (
                None,
                None,
                (
                    f"its cell's kernel {kernel}, recurrent_kernel {recurrent}, bias {bias} (input {input_size}, units "
                    f"{hidden_size}) are not those of a Keras LSTM (4 gates), GRU (3) or SimpleRNN"
                ),
            )
        return kind, "standard", ""
    if callable(getattr(layer, "export_weights", None)) and callable(getattr(layer, "import_weights", None)):
        try:
            exported = layer.export_weights()
        except Exception as exc:
            return None, None, f"its export_weights() raised {first_line(exc)}"
        kind, problem = cell_from_keys(exported, input_size, hidden_size)
        return (kind, "export", "") if kind else (None, None, f"its {problem}")
    names = ", ".join(v.path for v in trainable) or "none"
    return (
        None,
        None,
        (
            f"its layer has neither a cell with Keras's kernel/recurrent_kernel/bias (its weights: {names}) nor "
            "export_weights()/import_weights() in the canonical layout of adapters/reference.py"
        ),
    )


def state_shapes(factory: Factory, info: LayerInfo, units: int, features: int) -> list[tuple[int, ...]]:
    """Each state's shape without the batch for a layer of `units` fed `features`: (units,) when the
    probe found only such states (no layer is built), else read from a throwaway layer run eagerly
    on one step (the caller seeds Keras afterwards, so the model's own weights do not change)."""
    if info.units_only():
        return [(units,)] * info.n_states
    layer = factory(units, return_sequences=True, return_state=True, name="state_shapes")
    _, *states = layer(np.zeros((1, 1, features), np.float32))
    return [tuple(int(d) for d in s.shape[1:]) for s in states]


def probe_model(make_model: Callable[[ModelSpec], Any], target: str, stateful: bool = True) -> None:
    """Build and run the suite's own model (`make_model(spec)`, a KerasModel) once at the probe's
    sizes, as every cell will: the layer on `keras.Input(shape=(None, features))` (a symbolic input
    of unknown length), a traced training step, a traced predict at two lengths, and the stateful
    twin (`stateful=True` on a fixed `batch_shape`; unless `stateful` is False: a layer that declares
    no stateful training) taking the layer's weights. A layer that only
    runs eagerly, or only at a static length, is one AdapterError here instead of a traceback in
    every cell. The global RNG state (Python's, NumPy's) is left as it was; each cell seeds its own."""
    b, t, i, h = PROBE_BATCH, PROBE_TIME, PROBE_INPUT, PROBE_HIDDEN
    kept = random.getstate(), np.random.get_state()
    x = np.random.default_rng(0).normal(size=(b, t, i)).astype(np.float32)
    spec = ModelSpec(input_size=i, output_size=1, hidden_size=h, return_sequences=True)
    stage = f"building the suite's model around {target}({h}, ...) on keras.Input(shape=(None, {i}))"
    try:
        model = make_model(spec)
        stage = f"a traced training step of that model on x of shape {(b, t, i)}"
        model.make_train_step(Budget(max_epochs=1, batch_size=b))(x, np.zeros((b, t, 1), np.float32))
        for length in (t, t - 2):
            stage = f"a traced predict of that model on x of shape {(b, length, i)}"
            model.predict(x[:, :length])
        ours = theirs = _shapes(model.rnn.get_weights())
        if stateful:
            stage = f"the stateful twin {target}({h}, stateful=True) on keras.Input(batch_shape={(b, t, i)})"
            twin = model._rnn(True, name="probe_stateful", stateful=True)
            twin(keras.Input(batch_shape=(b, t, i)))
            theirs = _shapes(twin.get_weights())
    except AdapterError:
        raise
    except Exception as exc:
        raise AdapterError(
            f"{stage} raised {traced_error(exc)}; the layer must run on a symbolic input of unknown length inside a "
            "tf.function, as keras.layers.LSTM does"
        ) from None
    finally:
        random.setstate(kept[0])
        np.random.set_state(kept[1])
    if ours != theirs:
        raise AdapterError(
            f"{stage} has weights of shapes {theirs}, not the layer's {ours}: stateful training copies the "
            "weights between the two, so stateful=True must not add or change any"
        )


def traced_error(exc: BaseException) -> str:
    """`Type: message (at file:line, in function)` of an error raised inside a tf.function or a
    Keras layer call, whose text is the traced stack, the error line and Keras's own wrapping (ANSI
    bold included); other errors as `first_line`."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("in user code"):
        return first_line(exc)
    errors = [k for k, line in enumerate(lines) if re.match(r"^[\w.]*(Error|Exception)\b[^ ]*: ", line)]
    if not errors:
        return first_line(exc)
    k = errors[-1]
    said = lines[k]
    if "Exception encountered when calling" in said and k + 1 < len(lines):
        said = f"{said.split(':', 1)[0]}: {lines[k + 1]}"
    where = [m for line in lines[:k] if (m := re.match(r'^File "([^"]+)", line (\d+), in (\S+)', line))]
    if where:
        path, line_no, function = where[-1].groups()
        said += f" (at {os.path.relpath(path) if path.startswith(os.getcwd()) else path}:{line_no}, in {function})"
    return said
