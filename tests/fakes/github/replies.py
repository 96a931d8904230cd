"""How the fake GitHub answers: JSON bodies, REST errors, and ending a request early."""

from __future__ import annotations

import json

from werkzeug.wrappers import Response

DOCS_URL = "https://docs.github.com/rest"


class _Reply(Exception):
    """Ends a request early with ``response``."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def _json(data: object, status: int = 200) -> Response:
    return Response(json.dumps(data), status, content_type="application/json; charset=utf-8")


def _api_error(status: int, message: str) -> _Reply:
    return _Reply(_json({"message": message, "documentation_url": DOCS_URL}, status))
