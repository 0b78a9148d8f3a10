"""Memory math: the estimator (components, precision recipes, methods), measured peak memory, hardware fit."""
from coursekit.memory.estimator import (
    COMPONENTS,
    CUDA_OVERHEAD_BYTES,
    GB,
    GIB,
    MemoryEstimate,
    QuantOptions,
    activation_breakdown,
    activation_peak,
    estimate_memory,
    quantized_tensor_bytes,
    weight_bytes,
    weight_bytes_breakdown,
)
from coursekit.memory.recipes import ATTENTIONS, ESTIMATED_METHODS, LOSSES, OPTIMIZERS, PRECISIONS

_LAZY = {
    "measure_peak_memory": "coursekit.memory.measure",
    "MeasuredMemory": "coursekit.memory.measure",
    "PeakMemory": "coursekit.memory.peak",
    "estimated_training_bytes": "coursekit.memory.peak",
    "GPUS": "coursekit.memory.hardware",
    "hardware_fit": "coursekit.memory.hardware",
    "suggest_batch_size": "coursekit.memory.hardware",
    "gpu_capacity_bytes": "coursekit.memory.hardware",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)


__all__ = [
    "ATTENTIONS", "COMPONENTS", "CUDA_OVERHEAD_BYTES", "GB", "GIB", "ESTIMATED_METHODS", "LOSSES", "MemoryEstimate",
    "OPTIMIZERS",
    "PRECISIONS", "QuantOptions", "activation_breakdown", "activation_peak", "estimate_memory", "quantized_tensor_bytes",
    "weight_bytes", "weight_bytes_breakdown", *_LAZY,
]
