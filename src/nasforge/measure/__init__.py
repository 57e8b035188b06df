"""Measurements of a model on this machine: size, FLOPs, latency, energy."""
from .cost import count_flops, count_params, latency_seconds, model_size_bytes
from .energy import PowerSettings, energy_meter, estimate_kwh, rapl_readable

__all__ = ["count_params", "count_flops", "latency_seconds", "model_size_bytes", "PowerSettings",
           "energy_meter", "estimate_kwh", "rapl_readable"]
