"""The Keras 3 adapter (TensorFlow backend): `model` (the model and its training), `layer`
(conformance's bare layer), `probe` (the load-time probe of a factory), `stack` (stacks and
bidirectional), `native` (the layer with TensorFlow tensors),
`selfgrad` (its GradientTape gradient and float64 copy). Only this folder imports keras."""
