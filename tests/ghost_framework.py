"""An adapter module whose framework is not installed: importing it raises ImportError, as
`adapters/on_keras/model.py` does on a machine without TensorFlow."""

import rnn_behaviour_framework_that_is_not_installed  # type: ignore[import-not-found]  # noqa: F401
