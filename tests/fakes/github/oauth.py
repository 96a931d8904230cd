"""The OAuth web flow of the fake GitHub: the authorize page and the token endpoint
(code exchange with PKCE, refresh with rotation), and the tokens they issue."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import string
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from werkzeug.wrappers import Request, Response

from tests.fakes.github.replies import _json, _Reply
from tests.fakes.github.state import AuthorizeRequest, _Code, _GitHubState, _Grant, _Token

REFRESH_TOKEN_LIFETIME = 15_897_600  # six months, the figure GitHub answers with
CLIENT_ID = "github-client-id"
CLIENT_SECRET = "github-client-secret"  # made up: the fake's default OAuth app
_BAD_CODE = ("bad_verification_code", "The code passed is incorrect or expired.")
_TOKEN_ERRORS_DOC = (
    "/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/"
)


def s256_challenge(verifier: str) -> str:
    """The PKCE S256 challenge for ``verifier``: base64url(sha256(verifier)), no padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


@dataclass(frozen=True)
class IssuedTokens:
    """A token answer; ``refresh_token`` and the lifetimes only with ``expiring_tokens``."""

    access_token: str
    scope: str
    refresh_token: str | None = None
    expires_in: int | None = None
    refresh_token_expires_in: int | None = None

    def as_json(self) -> dict[str, object]:
        answer: dict[str, object] = {
            "access_token": self.access_token,
            "token_type": "bearer",
            "scope": self.scope,
        }
        if self.refresh_token is not None:
            answer["expires_in"] = self.expires_in
            answer["refresh_token"] = self.refresh_token
            answer["refresh_token_expires_in"] = self.refresh_token_expires_in
        return answer


def _page(status: int, text: str) -> _Reply:
    return _Reply(
        Response(
            f"<!doctype html><title>GitHub</title><p>{text}</p>", status, content_type="text/html"
        )
    )


def _redirect(uri: str, **params: str | None) -> Response:
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [(name, value) for name, value in params.items() if value is not None]
    return Response(
        status=302, headers={"Location": urlunsplit(parts._replace(query=urlencode(query)))}
    )


def _oauth_form_or_json(request: Request, data: Mapping[str, object]) -> Response:
    """JSON only when the client asks for it, form-encoded otherwise, as GitHub does."""
    if "application/json" in request.headers.get("Accept", ""):
        return _json(data)
    form = urlencode({name: str(value) for name, value in data.items()})
    return Response(form, 200, content_type="application/x-www-form-urlencoded")


def _new_token(prefix: str) -> str:
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(36))


def _normalise_scope(raw: str) -> str:
    return ",".join(scope for scope in re.split(r"[\s,]+", raw) if scope)


class _OAuthEndpoints(_GitHubState):
    """``/login/oauth/authorize`` and ``/login/oauth/access_token``, called under ``_lock``."""

    def _authorize(self, request: Request) -> Response:
        args = request.args
        redirect_uri = args.get("redirect_uri") or self.callback_url
        state, challenge = args.get("state"), args.get("code_challenge")
        self._record_authorize_request(request)
        if args.get("client_id") != self.client_id:
            raise _page(400, "Unknown OAuth application (client_id).")
        if redirect_uri is None:
            raise _page(400, "No redirect_uri, and the app registered no callback URL.")
        if self.callback_url and not self._within_callback(redirect_uri):
            return _redirect(
                self.callback_url,
                error="redirect_uri_mismatch",
                error_description="The redirect_uri MUST match the registered callback URL.",
                state=state,
            )
        if challenge and args.get("code_challenge_method") != "S256":
            raise _page(400, "code_challenge_method must be S256.")
        if self._deny_next:
            self._deny_next = False
            return _redirect(redirect_uri, error="access_denied", state=state)
        if self._signed_in is None:
            raise _page(400, "Nobody is signed in to the fake GitHub: call sign_in_as() first.")
        code = secrets.token_hex(10)
        self._codes[code] = _Code(
            redirect_uri=redirect_uri,
            login=self._signed_in,
            scope=_normalise_scope(args.get("scope", "")),
            code_challenge=challenge,
            expires_at=time.time() + 600,
        )
        return _redirect(redirect_uri, code=code, state=state)

    def _record_authorize_request(self, request: Request) -> None:
        args = request.args
        self._authorize_requests.append(
            AuthorizeRequest(
                client_id=args.get("client_id", ""),
                redirect_uri=args.get("redirect_uri"),
                state=args.get("state"),
                scope=args.get("scope", ""),
                code_challenge=args.get("code_challenge"),
                code_challenge_method=args.get("code_challenge_method"),
                login=self._signed_in,
            )
        )

    def _within_callback(self, redirect_uri: str) -> bool:
        wanted, given = urlsplit(self.callback_url or ""), urlsplit(redirect_uri)
        same_origin = (wanted.scheme, wanted.netloc) == (given.scheme, given.netloc)
        return same_origin and given.path.startswith(wanted.path)

    def _access_token(self, request: Request) -> Response:
        values = {name: str(value) for name, value in request.values.items()}
        if request.is_json and isinstance(request.get_json(silent=True), dict):
            values.update({name: str(value) for name, value in request.get_json().items()})
        if values.get("grant_type") == "refresh_token":
            self._refresh_requests += 1
        credentials = (values.get("client_id"), values.get("client_secret"))
        if credentials != (self.client_id, self.client_secret):
            return self._token_error(
                request,
                "incorrect_client_credentials",
                "The client_id and/or client_secret passed are incorrect.",
            )
        if values.get("grant_type") == "refresh_token":
            return self._refresh(request, values.get("refresh_token", ""))
        return self._exchange_code(request, values)

    def _exchange_code(self, request: Request, values: dict[str, str]) -> Response:
        code_value = values.get("code", "")
        code = self._codes.pop(code_value, None)
        if code is None:
            grant = self._redeemed.get(code_value)
            if grant is not None:
                grant.revoked = True  # a replayed code: what it granted is compromised
            return self._token_error(request, *_BAD_CODE)
        self._redeemed[code_value] = None
        if "redirect_uri" in values and values["redirect_uri"] != code.redirect_uri:
            return self._token_error(
                request,
                "redirect_uri_mismatch",
                "The redirect_uri MUST match the registered callback URL.",
            )
        verifier = values.get("code_verifier")
        pkce_failed = code.code_challenge is not None and (
            verifier is None or s256_challenge(verifier) != code.code_challenge
        )
        if pkce_failed or time.time() >= code.expires_at:
            return self._token_error(request, *_BAD_CODE)
        grant = _Grant(login=code.login, scope=code.scope)
        self._redeemed[code_value] = grant
        return self._token_answer(request, self._issue(grant))

    def _refresh(self, request: Request, refresh_token: str) -> Response:
        token = self._refresh_tokens.get(refresh_token)
        if token is not None and token.used:
            token.grant.revoked = True  # reuse: someone else may hold the rotated tokens
        if token is None or not token.usable():
            return self._token_error(
                request,
                "bad_refresh_token",
                "The refresh token passed is incorrect or expired.",
            )
        token.used = True
        old_access = self._access_tokens.get(token.paired or "")
        if old_access is not None:
            old_access.revoked = True
        return self._token_answer(request, self._issue(token.grant))

    def _issue(self, grant: _Grant) -> IssuedTokens:
        if not self.expiring_tokens:
            access = _new_token("gho_")
            self._access_tokens[access] = _Token(grant=grant, expires_at=None)
            return IssuedTokens(access_token=access, scope=grant.scope)
        now = time.time()
        access, refresh = _new_token("ghu_"), _new_token("ghr_")
        self._access_tokens[access] = _Token(grant, now + self.token_lifetime, paired=refresh)
        self._refresh_tokens[refresh] = _Token(grant, now + REFRESH_TOKEN_LIFETIME, paired=access)
        return IssuedTokens(
            access_token=access,
            scope=grant.scope,
            refresh_token=refresh,
            expires_in=self.token_lifetime,
            refresh_token_expires_in=REFRESH_TOKEN_LIFETIME,
        )

    @staticmethod
    def _token_answer(request: Request, tokens: IssuedTokens) -> Response:
        return _oauth_form_or_json(request, tokens.as_json())

    @staticmethod
    def _token_error(request: Request, error: str, description: str) -> Response:
        """GitHub answers token errors with HTTP 200 and an ``error`` field."""
        data = {
            "error": error,
            "error_description": description,
            "error_uri": f"{_TOKEN_ERRORS_DOC}#{error.replace('_', '-')}",
        }
        return _oauth_form_or_json(request, data)
