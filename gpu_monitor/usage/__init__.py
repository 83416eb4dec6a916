"""Who used the GPUs: GPU-hours per user, host and GPU, and the GPUs held idle."""
