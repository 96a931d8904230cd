"""How the fake Google answers: JSON, Google's API error envelope, ending a request early."""

from __future__ import annotations

import json

from werkzeug.wrappers import Response


class _Reply(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def _json(data: object, status: int = 200) -> Response:
    return Response(json.dumps(data), status, content_type="application/json; charset=UTF-8")


def _google_error(status: int, message: str, reason: str, **extra: str) -> Response:
    """Google's API error envelope."""
    status_names = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED"}
    status_names |= {404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE"}
    error = {"message": message, "domain": "global", "reason": reason, **extra}
    body = {
        "error": {
            "code": status,
            "message": message,
            "errors": [error],
            "status": status_names.get(status, "UNKNOWN"),
        }
    }
    return _json(body, status)


def _unauthenticated(invalid: bool) -> _Reply:
    """401 as the Calendar API sends it, for a missing or a refused access token."""
    message = (
        "Request had invalid authentication credentials."
        if invalid
        else "Request is missing required authentication credential."
    ) + " Expected OAuth 2 access token, login cookie or other valid authentication credential."
    response = _google_error(
        401,
        message,
        "authError" if invalid else "required",
        location="Authorization",
        locationType="header",
    )
    response.headers["WWW-Authenticate"] = 'Bearer realm="https://accounts.google.com/"' + (
        ', error="invalid_token"' if invalid else ""
    )
    return _Reply(response)
