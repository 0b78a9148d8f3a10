"""Real architectures as data (presets) and exact parameter counting on the meta device."""
from coursekit.archs.count import (
    ALL_LINEAR,
    ArchSpec,
    LinearShape,
    ParameterCount,
    build_meta_model,
    count_lora_parameters,
    count_parameters,
    lora_target_modules,
    parameter_report,
    parameters_by_kind,
    resolve_arch,
)
from coursekit.archs.presets import PRESETS, preset_names

__all__ = [
    "ALL_LINEAR", "ArchSpec", "LinearShape", "ParameterCount", "PRESETS", "build_meta_model",
    "count_lora_parameters", "count_parameters", "lora_target_modules", "parameter_report",
    "parameters_by_kind", "preset_names", "resolve_arch",
]
