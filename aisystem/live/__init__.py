"""The live feed: staff watch every message's journey and the system's events as they happen.

* ``access``: who may watch (one function, tested condition by condition);
* ``selectors``: the reads (recent events, events after a cursor);
* ``relay``: in the embedded default, carries events from every process to this process's
  browsers by reading the ``Event`` table;
* ``consumers``, ``routing``: the WebSocket at ``/ws/live/``; ``views``: the page at ``/live/``.
"""
