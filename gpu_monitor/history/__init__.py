"""GPU history in the project's own database: add ``"gpu_monitor.history"`` to
``INSTALLED_APPS`` (after ``"gpu_monitor"``), migrate, and run ``manage.py gpu_record``."""
