"""Inference-runtime rows: ONNX graphs run by an inference engine (ONNX Runtime), judged by the same
checks as the frameworks. `runtimes` (a session of one engine over an ONNX model, one thread),
`nodes` (ONNX LSTM/GRU/RNN nodes built from canonical weights: conformance's bare layer and
stacks), `model` (the inference-only row: the trained model of a framework row, exported once per
(task, seed), run by the engine). Only this folder imports onnx and onnxruntime.
"""
