"""Keras factories broken in one way each, for the bring-your-own-RNN tests (imports keras)."""

from __future__ import annotations

from typing import Any

import keras


def units_only(units: int) -> keras.layers.Layer:
    """Takes no layer keyword arguments: the model cannot ask for states or sequences."""
    return keras.layers.LSTM(units)


def drops_return_state(units: int, **layer_kwargs: Any) -> keras.layers.Layer:
    """Swallows return_state: the layer hands back no state."""
    layer_kwargs.pop("return_state", None)
    return keras.layers.GRU(units, **layer_kwargs)


def reset_before_gru(units: int, **layer_kwargs: Any) -> keras.layers.Layer:
    """A fine layer in the GRU's reset-before variant: weight checks run against that variant."""
    return keras.layers.GRU(units, reset_after=False, **layer_kwargs)
