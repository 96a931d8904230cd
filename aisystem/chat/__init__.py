"""The browser chat: ``/chat/`` (the page) and ``/ws/chat/`` (its WebSocket).

A signed-in Django user talks to the assistant through the same pipeline as Telegram and
the REST API, on the ``web`` transport. ``urls.urlpatterns`` and ``routing.websocket_urlpatterns``
are included by the project's ``urls.py`` and ``asgi.py``; the wire protocol is described in
``consumers``.
"""
