"""Fleet: the latest state of every recorded host, in one site (needs gpu_monitor.history)."""
