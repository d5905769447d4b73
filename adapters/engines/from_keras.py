"""A trained Keras row's model to LiteRT (TFLite flatbuffer), builtin ops only, by TensorFlow's own converter.

The whole functional model ([proj] -> RNN -> head, the head's activation, softmax included, is a
layer of it) is converted with its initial state as inputs and its final state as outputs, under
the names the runtime rows use (`x`, `state_<k>` -> `y`, `state_out_<k>`), kept in the flatbuffer's
`serving_default` signature so that a runtime maps them by name.

The conversion limits, measured with tensorflow-cpu 2.21 / keras 3.15.1 / ai-edge-litert 2.3.0:

- Keras 3's `model.export(format="litert")` keeps TensorFlow ops (Flex) the pip interpreter lacks,
  so builtin ops only (`OpsSet.TFLITE_BUILTINS`): the recurrence becomes a WHILE loop.
- The batch must be static: with a dynamic batch the converter refuses the loop's
  `TensorListReserve` ("requires element_shape to be static"), and a graph converted at one batch
  fails at another (a RESHAPE inside the WHILE body keeps the converted batch, XNNPACK "failed to
  reshape"). The time axis stays dynamic. So the model is converted at `PIECE` rows, and the
  session runs other batches in pieces of that many rows (rows are independent: zero rows pad the
  last piece and are dropped).
- The weights must be frozen to constants first: converted from the concrete function with the
  model as its trackable object, they stay resource variables that the WHILE body reads before
  anything initialises them (READ_VARIABLE "variable != nullptr" at the first invoke).
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from rnn_behaviour.adapters.base import AdapterError
from rnn_behaviour.adapters.custom import first_line
from rnn_behaviour.adapters.engines.graph import Exported, state_leaves, tuple_state

EXPORTERS = ("tflite",)
#: The static batch the model is converted at, and so the rows per invoke: the runtime runs other
#: batches in pieces of this many rows. Measured (LSTM, 32 units, T=50, one thread; ms per predict
#: at B = 1 / 8 / 64 / 256): pieces of 1: 0.3 / 2.3 / 18 / 72; of 8: 0.6 / 0.7 / 4.4 / 17; of 32:
#: 1.6 / 1.6 / 3.3 / 14; of 64: 3.8 / 3.7 / 3.4 / 15 (Keras's own predict: 2.9 / 3.2 / 4.5 / 10.5).
#: 32: a batch of one pays for 32 rows (still under Keras's time), the large batches the suite
#: scores on are near the fastest.
PIECE = 32
#: The example length: no task uses 7 steps, and the time axis is left dynamic anyway.
EXAMPLE_TIME = 7


def _converter_version() -> str:
    return f"tf.lite.TFLiteConverter (tensorflow {tf.__version__})"


def export(model: Any, exporter: str = "tflite") -> Exported:
    """`model` (an `on_keras.model.KerasModel`, trained) as a TFLite flatbuffer with builtin ops only;
    AdapterError with the converter's own first line when it cannot."""
    if callable(exporter) or exporter not in EXPORTERS:
        raise AdapterError(f"unknown keras exporter {exporter!r}: choose one of {', '.join(EXPORTERS)}")
    keras_model = model.keras_model
    spec = model.spec
    shapes = [tuple(int(n) for n in shape) for shape in model.state_shapes]
    n_states = len(shapes)
    signature = [tf.TensorSpec((PIECE, None, spec.input_size), tf.float32, name="x")]
    signature += [tf.TensorSpec((PIECE, *shape), tf.float32, name=f"state_{k}") for k, shape in enumerate(shapes)]

    @tf.function(input_signature=signature)
    def forward(x: tf.Tensor, *states: tf.Tensor) -> dict[str, tf.Tensor]:
        y, *new = keras_model([x, *states], training=False)
        return {"y": y, **{f"state_out_{k}": s for k, s in enumerate(new)}}

    try:
        concrete = forward.get_concrete_function()
        frozen = convert_variables_to_constants_v2(concrete)
        structure = concrete.structured_outputs

        # The frozen function returns a flat list: a second function gives the outputs their names
        # back (the signature's), with no variables left for the converter to keep.
        @tf.function(input_signature=signature)
        def named(x: tf.Tensor, *states: tf.Tensor) -> dict[str, tf.Tensor]:
            return tf.nest.pack_sequence_as(structure, frozen(x, *states))

        holder = tf.Module()
        holder.named = named
        converter = tf.lite.TFLiteConverter.from_concrete_functions([named.get_concrete_function()], holder)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        blob = converter.convert()
    except Exception as exc:
        raise AdapterError(f"the LiteRT conversion (builtin ops only) failed: {first_line(exc)}") from None

    return Exported(
        blob=blob,
        input_names=("x", *(f"state_{k}" for k in range(n_states))),
        state_shapes=tuple((-1, *shape) for shape in shapes),
        unflatten=tuple_state,  # KerasModel.predict's nest: a tuple of the states, or the one state itself
        flatten=state_leaves,
        example=(PIECE, EXAMPLE_TIME),
        how={
            "exporter": f"{_converter_version()}.from_concrete_functions, variables frozen",
            "opset": "none (a TFLite flatbuffer)",
            "ops": "builtin (TFLITE_BUILTINS), recurrence as WHILE",
            "batch": f"static at {PIECE}: other batches run in pieces of {PIECE} rows",
            "time": "dynamic",
        },
        versions={"tensorflow": str(tf.__version__)},
        format="tflite",
    )
