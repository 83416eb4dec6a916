"""Notices to whoever holds a GPU idle (``manage.py gpu_notify``), on top of usage."""
