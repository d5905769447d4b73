"""The PyTorch adapter: `model` (the model and its training, the built-ins' factories), `layer`
(conformance's bare layer), `probe` (the load-time probe of a factory), `stack` (stacks and
bidirectional), `native` (the module with torch tensors), `selfgrad` (its own gradient and its
float64 copy). Only this folder imports torch."""
