"""The JAX adapter (Flax NNX): `model` (the model and its training under `jax.jit`, whole-model
weights), `network` (the model's network, its loss and its jitted programs), `builtins` (the
`flax-lstm`/`flax-gru`/`flax-rnn` modules), `probe` (the load-time probe of a factory), `layer` and
`stack` (conformance's bare layer and stacks), `native` (the module with JAX arrays), `selfgrad`
(its own gradient by `jax.vjp` and its float64 copy). Only this folder
imports jax, flax and optax.

A factory is `factory(input_size, hidden_size, *, rngs: nnx.Rngs) -> nnx.Module` whose module is
called `module(x, state=None) -> (y, state)`, batch first; the state is any pytree of arrays with
the batch in their shape. The weight checks read one of Flax's cells holding every parameter, or a
canonical `export_weights()`/`import_weights()`; a `seq_lengths` keyword opens padded batches.

XLA's CPU backend is kept to one thread (as the other frameworks' intra-op threads, `base.threads`):
the flags are set here, before anything in this folder imports jax, unless `XLA_FLAGS` already says
otherwise (jax reads them once, at its first import).
"""

import os as _os

if (
    "xla_cpu_multi_thread_eigen" not in _os.environ.get("XLA_FLAGS", "")
    and _os.environ.get("RNN_BEHAVIOUR_THREADS", "1") == "1"
):
    _os.environ["XLA_FLAGS"] = (
        _os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    ).strip()
