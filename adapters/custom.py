"""What the framework adapters share to take in an implementation a user brings (framework-free).

`--adapter torch:pkg.module:factory` or `keras:pkg.module:factory` hands a factory to the
framework's adapter (`adapters/on_torch/model.py`, `adapters/on_keras/model.py`), which probes it once at load
time with the shapes below, so that a wrong signature, a wrong output shape or a state that is not
accepted back is a usage error before anything trains. The built-ins go through the same path.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from rnn_behaviour.adapters.base import AdapterError, Capabilities
from rnn_behaviour.adapters.reference import (
    GATES,
    VARIANTS,
    Weights,
    has_recurrent_bias,
    needs_recurrent_bias,
    weight_shapes,
)

#: The load-time probe's sizes: all different, so a shape that comes back names which size is
#: wrong; the batch is neither 1 nor 2, so a one- or two-layer state's first dimension is never
#: mistaken for it (a time-first module is told so); the hidden size divides into 2 or 4 heads.
PROBE_BATCH, PROBE_TIME, PROBE_INPUT, PROBE_HIDDEN = 3, 7, 5, 8


#: The attribute by which a factory, or the module/layer it returns, declares what it does not do:
#: `rnn_behaviour_capabilities = {"stateful_training": "its API carries no state between calls"}`.
#: Each key is one of DECLARABLE; a value False or a reason (a string) turns the capability off, and
#: the checks that need it are skipped with that reason; True keeps what the probe found, and a
#: True the probe contradicts is a usage error. The module's own declaration wins over the factory's.
#: `state` off means the module takes no initial state and returns none: it is called `module(x)`
#: (torch) and may return y alone; what needs a state (stateful training, padded batches, the weight
#: checks, which hand in a random initial state) goes off with it.
CAPABILITIES_ATTRIBUTE = "rnn_behaviour_capabilities"
DECLARABLE = ("state", "stateful_training", "variable_length", "weight_io")
#: The capabilities that need a state handed in and out, turned off with `state`.
NEED_STATE = ("stateful_training", "variable_length", "weight_io")


def read_declaration(target: str, *owners: Any) -> dict[str, bool | str]:
    """The capabilities declared on `owners` (the factory, then its module or layer), checked."""
    out: dict[str, bool | str] = {}
    for owner in owners:
        declared = getattr(owner, CAPABILITIES_ATTRIBUTE, None)
        if declared is None:
            continue
        where = f"{target}: {CAPABILITIES_ATTRIBUTE} of {type(owner).__name__}"
        if not isinstance(declared, Mapping):
            raise AdapterError(f"{where} is a {type(declared).__name__}, not a dict of capability: False or reason")
        for key, value in declared.items():
            if key not in DECLARABLE:
                raise AdapterError(f"{where} names {key!r}, not one of {', '.join(DECLARABLE)}")
            if not isinstance(value, bool | str) or value == "":
                raise AdapterError(f"{where}[{key!r}] is {value!r}: True, False or a reason (a non-empty string)")
            out[key] = value
    return out


def apply_declaration(
    target: str, capabilities: Capabilities, notes: dict[str, str], declared: Mapping[str, bool | str]
) -> Capabilities:
    """`capabilities` with the declared ones turned off (`notes` gets each one's reason); a
    capability declared True that the probe did not find is an AdapterError with the probe's reason."""
    for key, value in declared.items():
        if value is True:
            if not getattr(capabilities, key):
                found = notes.get(key) or "it is off for this framework"
                raise AdapterError(f"{target} declares {key}, but the load-time probe found otherwise: {found}")
            continue
        reason = value if isinstance(value, str) else "declared False"
        notes[key] = f"{CAPABILITIES_ATTRIBUTE} says {key} is off: {reason}"
        capabilities = dataclasses.replace(capabilities, **{key: False})
    if not capabilities.state:
        for key in NEED_STATE:
            if getattr(capabilities, key):
                notes[key] = f"{notes['state']}, and {key} needs one"
                capabilities = dataclasses.replace(capabilities, **{key: False})
    return capabilities


def declared_stateless(declared: Mapping[str, bool | str]) -> str | None:
    """The reason a factory or its module gave for having no state, or None when it has one."""
    value = declared.get("state", True)
    if value is True:
        return None
    return value if isinstance(value, str) else "declared False"


def first_line(exc: BaseException) -> str:
    """`Type: message` of an exception on one line (Keras and TensorFlow errors run to many)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def import_target(target: str, what: str) -> Any:
    """`pkg.module:attribute`, imported; an AdapterError naming the module or attribute that is
    missing (a module that exists but fails to import says so with its own error)."""
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or module_name
        where = "" if missing == module_name else f" (importing {module_name!r})"
        raise AdapterError(f"{what}: module {missing!r} not found{where}; is it on the Python path?") from None
    except Exception as exc:
        raise AdapterError(f"{what}: importing {module_name!r} raised {first_line(exc)}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        own = sorted(
            n for n, v in vars(module).items()
            if not n.startswith("_") and callable(v) and getattr(v, "__module__", None) == module.__name__
        )  # fmt: skip
        raise AdapterError(
            f"{what}: module {module_name!r} has no attribute {attr!r} (callables defined there: "
            f"{', '.join(own) or 'none'})"
        ) from None


def cell_from_rows(rows: int, hidden_size: int) -> str | None:
    """The cell whose stacked gate blocks make `rows` = 4H (LSTM), 3H (GRU) or H (tanh RNN)."""
    return {4 * hidden_size: "lstm", 3 * hidden_size: "gru", hidden_size: "rnn"}.get(rows)


def cell_from_keys(weights: Mapping[str, Any], input_size: int, hidden_size: int) -> tuple[str | None, str]:
    """The cell of a canonical export (with or without bh_*), or None and what is wrong with it."""
    if not isinstance(weights, Mapping):
        return None, f"export_weights() returned {type(weights).__name__}, not a dict of canonical keys"
    for cell in GATES:
        shapes = weight_shapes(cell, input_size, hidden_size, has_recurrent_bias(weights))
        if set(weights) == set(shapes):
            bad = [f"{k} {np.shape(weights[k])} (expected {s})" for k, s in shapes.items() if np.shape(weights[k]) != s]
            if bad:
                return None, f"export_weights() for input {input_size}, hidden {hidden_size}: {'; '.join(bad)}"
            return cell, ""
    keys = ", ".join(sorted(weights)) or "none"
    return None, (
        f"export_weights() keys ({keys}) are not the canonical layout of an LSTM (W_i, U_i, b_i, ... for gates "
        "i, f, g, o), a GRU (z, r, n, with bh_*) or an RNN (W_h, U_h, b_h), each with or without bh_*: see "
        "adapters/reference.py"
    )


def export_access(module: Any, input_size: int, hidden_size: int) -> tuple[str | None, str | None, str, bool, str]:
    """How weight conformance reaches a module with `export_weights()`/`import_weights()` in the
    canonical layout: ("export", cell, "", whether its layout has bh_*, its `variant` attribute),
    or (None, None, why not, True, "")."""
    try:
        exported = module.export_weights()
    except Exception as exc:
        return None, None, f"its export_weights() raised {first_line(exc)}", True, ""
    cell, problem = cell_from_keys(exported, input_size, hidden_size)
    if cell is None:
        return None, None, f"its {problem}", True, ""
    variant = str(getattr(module, "variant", "") or "")
    if variant not in VARIANTS[cell]:
        forms = ", ".join(repr(v) for v in VARIANTS[cell])
        return None, None, f"its variant {variant!r} is not one of the {cell}'s ({forms})", True, ""
    if needs_recurrent_bias(cell, variant) and not has_recurrent_bias(exported):
        return None, None, "its export has no bh_*, which a reset-after GRU needs (variant 'reset_before'?)", True, ""
    return "export", cell, "", has_recurrent_bias(exported), variant


def has_export(module: Any) -> bool:
    """Whether a module offers `export_weights()` and `import_weights()` (the canonical layout)."""
    return callable(getattr(module, "export_weights", None)) and callable(getattr(module, "import_weights", None))


def canonical_gradients(
    cell: str,
    input_size: int,
    hidden_size: int,
    param_grads: Mapping[str, np.ndarray],
    import_weights: Callable[[Weights], None],
    read_params: Callable[[], Mapping[str, np.ndarray]],
    restore: Weights,
) -> Weights:
    """dL/dW in the canonical layout (that of `restore`, the layer's export) from the gradients of an
    implementation's own parameters, for an implementation that only offers `import_weights`:
    import is a linear map A from canonical weights to parameters (blocks copied, transposed,
    split), so the canonical gradient is Aᵀ g, read one canonical entry at a time as <A e_k, g>.
    `restore` is imported back."""
    out: Weights = {}
    shapes = weight_shapes(cell, input_size, hidden_size, has_recurrent_bias(restore))
    zero = {k: np.zeros(s) for k, s in shapes.items()}
    for key, array in zero.items():
        grad = np.zeros(array.shape)
        for idx in np.ndindex(array.shape):
            array[idx] = 1.0
            import_weights(zero)
            params = read_params()
            grad[idx] = sum(float(np.sum(params[name] * g)) for name, g in param_grads.items())
            array[idx] = 0.0
        out[key] = grad
    import_weights(restore)
    return out


def takes_keyword(factory: Callable[..., Any], keyword: str) -> bool:
    """Whether the factory's signature names `keyword` or takes **kwargs (else calling it with
    `keyword` would be a TypeError); True when the signature cannot be read."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.name == keyword or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


#: The keyword by which a factory that names it is told the task's training length (an LMU's window).
LENGTH_KEYWORD = "sequence_length"


def with_length(factory: Callable[..., Any], length: int | None) -> Callable[..., Any]:
    """`factory` with `sequence_length=length` bound when its signature names that keyword itself
    (through **kwargs does not count: keras.layers.LSTM and nn.LSTM take those and would refuse it);
    else `factory` unchanged. The load-time probe and conformance call the factory without it."""
    if length is None:
        return factory
    try:
        names = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return factory
    parameter = names.get(LENGTH_KEYWORD)
    if parameter is None or parameter.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.VAR_POSITIONAL):
        return factory
    return functools.partial(factory, **{LENGTH_KEYWORD: length})
