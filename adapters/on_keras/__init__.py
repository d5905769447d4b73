"""The Keras 3 adapter (TensorFlow backend): `model` (the model and its training), `layer`
(conformance's bare layer), `probe` (the load-time probe of a factory), `stack` (stacks and
bidirectional), `native` (the layer with TensorFlow tensors). Only this folder imports keras."""
