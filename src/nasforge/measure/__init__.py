"""Measurements of a model on this machine: size, FLOPs, latency (``cost``), energy
(``energy``), onnxruntime timing (``onnx``) and their settings (``settings``). Import from the
submodules: this package imports nothing, so reading settings never loads torch."""
