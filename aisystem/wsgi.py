"""WSGI entry point, for deployments without WebSockets."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aisystem.settings")
application = get_wsgi_application()
