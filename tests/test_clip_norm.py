"""`Budget.clip_norm` reaches both frameworks' optimizers (cycle_navigation trains with it)."""

from __future__ import annotations

import numpy as np

from rnn_behaviour.adapters import BUILTINS
from rnn_behaviour.tasks.base import Budget, ModelSpec

SPEC = ModelSpec(input_size=3, output_size=5, hidden_size=8, return_sequences=True, head="softmax")


def _grad_norm_after_a_step(clip_norm: float | None) -> float:
    import torch

    model = BUILTINS["torch-lstm"].load().build(SPEC, 0)
    step = model.make_train_step(Budget(max_epochs=1, learning_rate=1e-2, loss="crossentropy", clip_norm=clip_norm))
    rng = np.random.default_rng(0)
    step(rng.normal(size=(4, 6, 3)).astype(np.float32) * 50, rng.integers(0, 5, size=(4, 6)))
    grads = [p.grad.detach().reshape(-1) for p in model.net.parameters() if p.grad is not None]
    return float(torch.linalg.vector_norm(torch.cat(grads)))


def test_torch_clips_the_global_gradient_norm_before_the_step() -> None:
    unclipped = _grad_norm_after_a_step(None)
    assert unclipped > 1e-3  # so the clip below has something to do
    assert _grad_norm_after_a_step(1e-3) <= 1e-3 * (1 + 1e-5)


def test_keras_adam_takes_the_global_clip_norm() -> None:
    from rnn_behaviour.adapters.on_keras.model import adam

    assert adam(Budget(max_epochs=1, clip_norm=1.0)).global_clipnorm == 1.0
    assert adam(Budget(max_epochs=1)).global_clipnorm is None
