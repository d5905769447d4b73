"""Inference-engine rows: another row's trained model, exported and run by an inference engine
(ONNX Runtime; LiteRT for the Keras rows), judged by the same checks as the frameworks.

`runtimes` (an engine's session over an exported model, one thread), `graph` (what an exporter
hands over, and the check that the graph runs other shapes than its example), `from_torch` (a torch
row's model through `torch.onnx.export`; the one module here that imports torch), `nodes` (ONNX's
LSTM/GRU/RNN nodes built from canonical weights: conformance's bare layer and stacks), `model` (the
inference-only row, `RuntimeAdapter`); `from_keras` (a Keras row's model as a TFLite flatbuffer, builtin
ops, static batch) and `litert` (the LiteRT interpreter, inputs by name; imported only when a
LiteRT row runs). Only this folder imports onnx and the engines.
"""
