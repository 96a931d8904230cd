"""Leave request bodies to Django when daphne serves the app.

daphne's requests are Twisted ``http.Request`` objects, and Twisted parses every form body
(``multipart/form-data``, ``application/x-www-form-urlencoded``) into ``request.args``
before daphne hands the request on, which daphne never reads: it passes the raw body to
the ASGI application. A multipart body Twisted cannot parse (a JSON body labelled
``multipart/form-data``, a missing boundary) is answered there and then with a bare 400 and
an empty body, so the API never gets to say what is wrong (a JSON 415). Twisted has a switch
for exactly this, ``parsePOSTFormSubmission``; daphne does not expose it, so it is set on
each of daphne's requests here. Nothing is lost (Django parses the forms it needs itself),
and a large upload is no longer read into memory twice.

Hand-written because daphne has no setting for it; without daphne (another ASGI server)
this does nothing.
"""

from __future__ import annotations

import sys
from typing import Any


def leave_form_bodies_to_django() -> None:
    """Turn off Twisted's form parsing for daphne's requests, if daphne is serving."""
    module = sys.modules.get("daphne.http_protocol")
    if module is None or getattr(module.WebRequest, "_aisystem_forms_left", False):
        return
    original = module.WebRequest.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self._parsePOSTFormSubmission = False

    module.WebRequest.__init__ = __init__
    module.WebRequest._aisystem_forms_left = True
