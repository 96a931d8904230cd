"""The accounts server: a WSGI layer in front of oidc-provider-mock that adds PKCE,
Google's refresh-token rules, body credentials on refresh, revocation and the discovery
fields the mock lacks (see the package docstring)."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from werkzeug.wrappers import Request, Response

from tests.fakes.github import s256_challenge
from tests.fakes.google.replies import _json
from tests.fakes.google.state import GoogleAuthorizeRequest, _CodeContext, _GoogleState

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


class _AccountsLayer(_GoogleState):
    """The accounts server's WSGI app: some paths answered here, the rest by the mock."""

    def _accounts_wsgi(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        request = Request(environ, populate_request=False)
        if request.path == "/revoke" and request.method == "POST":
            response = self._revoke(request)
        elif request.path == "/oauth2/authorize":
            response = self._authorize(request, environ)
        elif request.path == "/oauth2/token" and request.method == "POST":
            response = self._token(environ)
        elif request.path == "/.well-known/openid-configuration":
            response = self._discovery(environ)
        else:
            return self._provider(environ, start_response)
        return response(environ, start_response)

    def _through_mock(self, environ: WSGIEnvironment) -> Response:
        return Response.from_app(self._provider, environ, buffered=True)

    def _authorize(self, request: Request, environ: WSGIEnvironment) -> Response:
        args = request.args
        if request.method == "GET":
            with self._lock:
                self._authorize_requests.append(
                    GoogleAuthorizeRequest(
                        client_id=args.get("client_id", ""),
                        redirect_uri=args.get("redirect_uri"),
                        state=args.get("state"),
                        scope=args.get("scope", ""),
                        code_challenge=args.get("code_challenge"),
                        code_challenge_method=args.get("code_challenge_method"),
                        access_type=args.get("access_type"),
                        prompt=args.get("prompt"),
                        nonce=args.get("nonce"),
                    )
                )
            return self._through_mock(environ)
        form = _read_form(environ)
        response = self._through_mock(environ)
        location = dict(parse_qsl(urlsplit(response.headers.get("Location", "")).query))
        if "code" in location:
            with self._lock:
                self._codes[location["code"]] = _CodeContext(
                    code_challenge=args.get("code_challenge"),
                    code_challenge_method=args.get("code_challenge_method", "plain"),
                    offline=args.get("access_type") == "offline",
                    asked_consent="consent" in args.get("prompt", "").split(),
                    sub=form.get("sub", ""),
                )
        return response

    def _token(self, environ: WSGIEnvironment) -> Response:
        form = _read_form(environ)
        if form.get("grant_type") == "refresh_token":
            with self._lock:
                self._refresh_requests += 1
            _move_client_secret_to_basic_auth(environ, form)
            return self._through_mock(environ)
        with self._lock:
            context = self._codes.pop(form.get("code", ""), None)
        if context is not None and context.code_challenge is not None:
            refusal = _pkce_refusal(context, form.get("code_verifier"))
            if refusal is not None:
                self._storage.remove_authorization_code(form.get("code", ""))
                return _json({"error": "invalid_grant", "error_description": refusal}, 400)
        response = self._through_mock(environ)
        if response.status_code == 200 and context is not None:
            self._keep_refresh_token_only_on_first_offline_consent(response, context)
        return response

    def _keep_refresh_token_only_on_first_offline_consent(
        self, response: Response, context: _CodeContext
    ) -> None:
        with self._lock:
            first_consent = context.sub not in self._consented or context.asked_consent
            keep = context.offline and first_consent
            if keep:
                self._consented.add(context.sub)
        tokens = json.loads(response.get_data())
        refresh_token = tokens.pop("refresh_token", None)
        if keep or refresh_token is None:
            return
        self._storage.remove_refresh_token(refresh_token)
        response.set_data(json.dumps(tokens))

    def _discovery(self, environ: WSGIEnvironment) -> Response:
        response = self._through_mock(environ)
        document = json.loads(response.get_data())
        document["revocation_endpoint"] = f"{document['issuer']}/revoke"
        document["code_challenge_methods_supported"] = ["plain", "S256"]
        response.set_data(json.dumps(document))
        return response

    def _revoke(self, request: Request) -> Response:
        """Google's revoke: the token and the rest of its grant stop working."""
        value = request.form.get("token") or request.args.get("token", "")
        token = self._storage.get_access_token(value) or self._storage.get_refresh_token(value)
        if token is None:
            return _json(
                {"error": "invalid_token", "error_description": "Token expired or revoked"}, 400
            )
        for access in self._storage.access_tokens():
            if access.user_id == token.user_id:
                self._storage.remove_access_token(access.token)
        for refresh in self._storage.refresh_tokens():
            if refresh.user_id == token.user_id:
                self._storage.remove_refresh_token(refresh.token)
        with self._lock:
            self._consented.discard(token.user_id)
        return _json({})


def _read_form(environ: WSGIEnvironment) -> dict[str, str]:
    """The urlencoded body, read and put back so the mock can read it too."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(raw)
    return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))


def _move_client_secret_to_basic_auth(environ: WSGIEnvironment, form: dict[str, str]) -> None:
    """The mock takes refresh-grant credentials only as HTTP Basic (RFC 6749 2.3.1 encoding)."""
    if "HTTP_AUTHORIZATION" in environ or "client_secret" not in form:
        return
    credentials = f"{quote(form.pop('client_id', ''))}:{quote(form.pop('client_secret'))}"
    environ["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(credentials.encode()).decode()
    raw = urlencode(form).encode()
    environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(raw), str(len(raw))


def _pkce_refusal(context: _CodeContext, verifier: str | None) -> str | None:
    """Why Google would refuse ``verifier`` for this code, or None when it matches."""
    if not verifier:
        return "Missing code verifier."
    if context.code_challenge_method.upper() == "S256":
        matches = s256_challenge(verifier) == context.code_challenge
    else:
        matches = verifier == context.code_challenge
    return None if matches else "Invalid code verifier."
