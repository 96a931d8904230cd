"""ASGI entry point, served by daphne.

HTTP goes to Django. WebSockets pass ``AllowedHostsOriginValidator`` (a page from another
origin is refused before any consumer runs; the origin must be one of ``ALLOWED_HOSTS``), then
``AuthMiddlewareStack`` (the session cookie gives ``scope["user"]``), then the routes:
``/ws/live/`` (the live feed, staff only) and ``/ws/chat/`` (the browser chat).
"""

from __future__ import annotations

import gc
import os

from django.core.asgi import get_asgi_application

from aisystem.daphne_forms import leave_form_bodies_to_django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aisystem.settings")
django_asgi_app = get_asgi_application()
leave_form_bodies_to_django()  # a malformed form body reaches Django (a JSON 415), see there

# After Django is set up: the consumers import models.
from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from aisystem.chat.routing import websocket_urlpatterns as chat_websockets  # noqa: E402
from aisystem.live.routing import websocket_urlpatterns as live_websockets  # noqa: E402

websocket_urlpatterns = [*live_websockets, *chat_websockets]

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)

# Everything loaded so far (Django, the apps, the URL conf) lives as long as the process: keep
# it out of the garbage collector's full passes, which otherwise walk ~270 000 objects and
# pause the event loop (and every WebSocket) for over 100 ms each time.
gc.freeze()
