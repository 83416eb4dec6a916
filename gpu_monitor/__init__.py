"""gpu_monitor: NVIDIA GPUs seen from Django, read live from NVML."""

__version__ = "0.1.0"
