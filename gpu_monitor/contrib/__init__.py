"""Plug-ins for other Django packages (django-health-check); each needs its extra."""
