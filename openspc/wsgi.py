"""WSGI entry point, for tools that want one; the server is daphne (openspc.asgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openspc.settings")

application = get_wsgi_application()
