"""A loopback fake of GitHub: the OAuth web flow and the slice of the REST API the
integrations use, served over real HTTP on 127.0.0.1.

``base_url`` stands in for https://github.com/ (the OAuth pages, the ``html_url`` links) and
``api_url`` for the REST root, laid out like GitHub Enterprise Server (``.../api/v3/``), so
social-core's GitHub backend and plain ``requests`` reach it through URL settings alone.

Where it differs from GitHub, on purpose:

* The authorize page approves at once, as whoever ``sign_in_as`` named: no login or consent
  page, so a client following redirects lands on its callback straight away.
* A person sees only the repositories they own: someone else's repository answers 404 even
  when public, so a test notices one person's token reaching another person's data.
* Scopes are recorded and echoed back (comma-separated, as GitHub does), never enforced.
* PKCE accepts only ``S256``. A code is spent when first presented, even if the exchange then
  fails; presenting a redeemed code again revokes the tokens it granted (RFC 6749 4.1.2).
* With ``expiring_tokens``, presenting a refresh token that was already used revokes the whole
  grant (RFC 9700 reuse detection). GitHub documents only that a used refresh token, and the
  access token it came with, stop working; both happen here too.
* ``DELETE /applications/{client_id}/token`` also revokes the refresh token issued with it.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Self
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

DOCS_URL = "https://docs.github.com/rest"
REFRESH_TOKEN_LIFETIME = 15_897_600  # six months, the figure GitHub answers with
RATE_LIMIT = 5000
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


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Requests are recorded by the fakes; the dev server's access log is noise."""


class LoopbackServer:
    """Serves a WSGI app on 127.0.0.1 from a daemon thread (shared with ``google.py``).

    ``start`` binds the port before the thread starts, so the URL answers as soon as it
    returns: connections made before the loop runs wait in the listen backlog.
    """

    def __init__(self, app: WSGIApplication) -> None:
        self._app = app
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the server is not started")
        return f"http://127.0.0.1:{self._server.server_port}/"

    def start(self) -> None:
        server = make_server(
            "127.0.0.1", 0, self._app, threaded=True, request_handler=_QuietHandler
        )
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        self._server, self._thread = server, thread

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = self._thread = None


@dataclass
class GitHubUser:
    login: str
    id: int
    email: str
    email_verified: bool
    name: str


@dataclass
class GitHubComment:
    id: int
    body: str
    user: GitHubUser
    html_url: str
    created_at: datetime


@dataclass
class GitHubIssue:
    id: int
    number: int
    title: str
    body: str
    state: str
    user: GitHubUser
    created_at: datetime
    comments: list[GitHubComment] = field(default_factory=list)


@dataclass
class GitHubRepo:
    id: int
    owner: GitHubUser
    name: str
    private: bool
    description: str
    created_at: datetime
    issues: list[GitHubIssue] = field(default_factory=list)

    @property
    def full_name(self) -> str:
        return f"{self.owner.login}/{self.name}"


@dataclass(frozen=True)
class AuthorizeRequest:
    """What a client sent to the authorize page (``login``: who was signed in)."""

    client_id: str
    redirect_uri: str | None
    state: str | None
    scope: str
    code_challenge: str | None
    code_challenge_method: str | None
    login: str | None


@dataclass(frozen=True)
class ApiRequest:
    """One request to ``/api/v3/``; ``token`` is the bearer/``token`` credential, if any."""

    method: str
    path: str
    token: str | None
    query: dict[str, str]
    json: object
    status: int


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


@dataclass
class _Grant:
    login: str
    scope: str
    revoked: bool = False


@dataclass
class _Token:
    grant: _Grant
    expires_at: float | None
    paired: str | None = None  # the refresh token issued with an access token, or vice versa
    revoked: bool = False
    used: bool = False  # a refresh token, rotated away

    def usable(self) -> bool:
        expired = self.expires_at is not None and time.time() >= self.expires_at
        return not (expired or self.revoked or self.used or self.grant.revoked)


@dataclass
class _Code:
    redirect_uri: str
    login: str
    scope: str
    code_challenge: str | None
    expires_at: float


@dataclass
class _Failure:
    method: str
    path_prefix: str
    status: int
    times: int
    retry_after: int | None
    body: object


class _Reply(Exception):
    """Ends a request early with ``response``."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def _json(data: object, status: int = 200) -> Response:
    return Response(json.dumps(data), status, content_type="application/json; charset=utf-8")


def _api_error(status: int, message: str) -> _Reply:
    return _Reply(_json({"message": message, "documentation_url": DOCS_URL}, status))


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


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _new_token(prefix: str) -> str:
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(36))


def _presented_token(request: Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() not in {"bearer", "token"}:
        return None
    return value.strip() or None


def _normalise_scope(raw: str) -> str:
    return ",".join(scope for scope in re.split(r"[\s,]+", raw) if scope)


def _int_arg(request: Request, name: str, default: int, low: int, high: int) -> int:
    try:
        return max(low, min(high, int(request.args.get(name, default))))
    except ValueError:
        return default


_URLS = Map(
    [
        Rule("/login/oauth/authorize", endpoint="authorize", methods=["GET"]),
        Rule("/login/oauth/access_token", endpoint="access_token", methods=["POST"]),
        Rule("/api/v3/user", endpoint="get_user", methods=["GET"]),
        Rule("/api/v3/user/emails", endpoint="list_emails", methods=["GET"]),
        Rule("/api/v3/user/repos", endpoint="list_repos", methods=["GET"]),
        Rule("/api/v3/repos/<owner>/<repo>/issues", endpoint="list_issues", methods=["GET"]),
        Rule("/api/v3/repos/<owner>/<repo>/issues", endpoint="create_issue", methods=["POST"]),
        Rule(
            "/api/v3/repos/<owner>/<repo>/issues/<int:number>",
            endpoint="get_issue",
            methods=["GET"],
        ),
        Rule(
            "/api/v3/repos/<owner>/<repo>/issues/<int:number>/comments",
            endpoint="create_comment",
            methods=["POST"],
        ),
        Rule("/api/v3/applications/<client_id>/token", endpoint="delete_token", methods=["DELETE"]),
        Rule("/api/v3/applications/<client_id>/grant", endpoint="delete_grant", methods=["DELETE"]),
    ],
    strict_slashes=False,
)


class FakeGitHub:
    """GitHub's OAuth web flow and REST API on loopback, with in-memory, lock-guarded state.

    ``callback_url``, when set, is the OAuth app's registered callback: a ``redirect_uri``
    must then share its scheme, host and port and lie under its path, as on GitHub.
    """

    def __init__(
        self,
        *,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        callback_url: str | None = None,
        expiring_tokens: bool = False,
        token_lifetime: int = 28_800,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.callback_url = callback_url
        self.expiring_tokens = expiring_tokens
        self.token_lifetime = token_lifetime
        self._lock = threading.RLock()
        self._ids = itertools.count(1001)
        self._users: dict[str, GitHubUser] = {}
        self._repos: list[GitHubRepo] = []
        self._signed_in: str | None = None
        self._deny_next = False
        self._codes: dict[str, _Code] = {}
        self._redeemed: dict[str, _Grant | None] = {}
        self._access_tokens: dict[str, _Token] = {}
        self._refresh_tokens: dict[str, _Token] = {}
        self._failures: list[_Failure] = []
        self._authorize_requests: list[AuthorizeRequest] = []
        self._api_requests: list[ApiRequest] = []
        self._calls_by_login: dict[str, int] = {}
        self._refresh_requests = 0
        self._rate_limit_reset = int(time.time()) + 3600
        self._server = LoopbackServer(self._wsgi)
        self._views: dict[str, Callable[..., Response]] = {
            "authorize": self._authorize,
            "access_token": self._access_token,
            "get_user": self._get_user,
            "list_emails": self._list_emails,
            "list_repos": self._list_repos,
            "list_issues": self._list_issues,
            "create_issue": self._create_issue,
            "get_issue": self._get_issue,
            "create_comment": self._create_comment,
            "delete_token": self._delete_token,
            "delete_grant": self._delete_grant,
        }

    # Lifecycle and URLs

    def start(self) -> Self:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """Like ``https://github.com/``: ``http://127.0.0.1:PORT/``."""
        return self._server.base_url

    @property
    def api_url(self) -> str:
        """The REST root, ``http://127.0.0.1:PORT/api/v3/``."""
        return f"{self.base_url}api/v3/"

    @property
    def authorize_url(self) -> str:
        return f"{self.base_url}login/oauth/authorize"

    @property
    def access_token_url(self) -> str:
        return f"{self.base_url}login/oauth/access_token"

    # Arranging the world

    def add_user(
        self,
        login: str,
        id: int | None = None,
        *,
        email: str | None = None,
        email_verified: bool = True,
        name: str | None = None,
    ) -> GitHubUser:
        """A GitHub account; ``email`` defaults to ``<login>@example.com``."""
        with self._lock:
            user = GitHubUser(
                login=login,
                id=id if id is not None else next(self._ids),
                email=email if email is not None else f"{login}@example.com",
                email_verified=email_verified,
                name=name if name is not None else login.title(),
            )
            self._users[login.lower()] = user
            return user

    def sign_in_as(self, login: str) -> None:
        """Whom the authorize page approves as from now on."""
        with self._lock:
            self._signed_in = self._user(login).login

    def deny_next_authorization(self) -> None:
        """The next authorize request redirects back with ``error=access_denied``."""
        with self._lock:
            self._deny_next = True

    def add_repo(
        self, owner_login: str, name: str, private: bool = False, *, description: str = ""
    ) -> GitHubRepo:
        with self._lock:
            repo = GitHubRepo(
                id=next(self._ids),
                owner=self._user(owner_login),
                name=name,
                private=private,
                description=description,
                created_at=datetime.now(UTC),
            )
            self._repos.append(repo)
            return repo

    def add_issue(
        self, owner_login: str, repo: str, title: str, *, body: str = "", state: str = "open"
    ) -> GitHubIssue:
        with self._lock:
            found = self._repo(self._user(owner_login), owner_login, repo)
            return self._new_issue(found, found.owner, title, body, state)

    def repo(self, owner_login: str, name: str) -> GitHubRepo:
        """The stored repository, to assert on the issues and comments a test created."""
        with self._lock:
            return self._repo(self._user(owner_login), owner_login, name)

    def issue_tokens(self, login: str, scope: str = "repo") -> IssuedTokens:
        """Tokens for ``login`` as if they had gone through the web flow."""
        with self._lock:
            return self._issue(_Grant(login=self._user(login).login, scope=_normalise_scope(scope)))

    # Steering and observing

    def fail_next(
        self,
        method: str,
        path_prefix: str,
        status: int,
        *,
        times: int = 1,
        retry_after: int | None = None,
        body: object = None,
    ) -> None:
        """The next ``times`` requests for ``method`` whose path from the server root starts
        with ``path_prefix`` (``"/api/v3/user/repos"``, ``"/login/oauth/access_token"``)
        answer ``status``. ``retry_after`` adds ``Retry-After`` (a secondary rate limit); a
        403/429 without it is a primary rate limit (``x-ratelimit-remaining: 0``). ``body``
        replaces GitHub's default JSON (a str is sent as text)."""
        with self._lock:
            self._failures.append(
                _Failure(method.upper(), path_prefix, status, times, retry_after, body)
            )

    def expire_tokens(self) -> None:
        """Every access token issued so far expires now (refresh tokens still work)."""
        with self._lock:
            for token in self._access_tokens.values():
                token.expires_at = time.time() - 1

    def expire(self, token: str) -> None:
        """``token`` (an access or a refresh token) expires now."""
        with self._lock:
            self._token(token).expires_at = time.time() - 1

    def revoke_authorization(self, login: str) -> None:
        """The person revokes the app on github.com: all their tokens stop working."""
        with self._lock:
            for token in [*self._access_tokens.values(), *self._refresh_tokens.values()]:
                if token.grant.login.lower() == login.lower():
                    token.grant.revoked = True

    def token_is_active(self, token: str) -> bool:
        with self._lock:
            found = self._access_tokens.get(token) or self._refresh_tokens.get(token)
            return found is not None and found.usable()

    @property
    def authorize_requests(self) -> list[AuthorizeRequest]:
        with self._lock:
            return list(self._authorize_requests)

    @property
    def api_requests(self) -> list[ApiRequest]:
        with self._lock:
            return list(self._api_requests)

    @property
    def refresh_requests(self) -> int:
        """How many ``grant_type=refresh_token`` requests arrived, refused ones included."""
        with self._lock:
            return self._refresh_requests

    # Plumbing

    def _wsgi(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        with self._lock:
            response = self._handle(request)
        return response(environ, start_response)

    def _handle(self, request: Request) -> Response:
        is_api = request.path.startswith("/api/v3/")
        token = _presented_token(request)
        try:
            self._raise_injected_failure(request)
            endpoint, args = _URLS.bind_to_environ(request.environ).match()
            response = self._views[str(endpoint)](request, **args)
        except _Reply as reply:
            response = reply.response
        except HTTPException:
            response = _api_error(404, "Not Found").response if is_api else Response("", 404)
        if is_api:
            self._api_requests.append(
                ApiRequest(
                    method=request.method,
                    path=request.path.removeprefix("/api/v3"),
                    token=token,
                    query=dict(request.args.items()),
                    json=request.get_json(silent=True),
                    status=response.status_code,
                )
            )
            self._add_rate_limit_headers(response, token)
        return response

    def _raise_injected_failure(self, request: Request) -> None:
        for failure in self._failures:
            if failure.method == request.method and request.path.startswith(failure.path_prefix):
                break
        else:
            return
        failure.times -= 1
        if failure.times <= 0:
            self._failures.remove(failure)
        if isinstance(failure.body, str):
            response = Response(failure.body, failure.status, content_type="text/plain")
        else:
            response = _json(failure.body or self._failure_body(failure), failure.status)
        if failure.retry_after is not None:
            response.headers["Retry-After"] = str(failure.retry_after)
        elif failure.status in {403, 429}:
            response.headers["x-ratelimit-remaining"] = "0"
            response.headers["x-ratelimit-used"] = str(RATE_LIMIT)
        raise _Reply(response)

    @staticmethod
    def _failure_body(failure: _Failure) -> dict[str, str]:
        if failure.status in {403, 429} and failure.retry_after is not None:
            message = "You have exceeded a secondary rate limit. Please wait a few minutes."
        elif failure.status in {403, 429}:
            message = "API rate limit exceeded."
        elif failure.status >= 500:
            message = "Server Error"
        else:
            message = "Injected failure"
        return {"message": message, "documentation_url": DOCS_URL}

    def _add_rate_limit_headers(self, response: Response, token: str | None) -> None:
        found = self._access_tokens.get(token or "")
        login = found.grant.login if found else ""
        used = self._calls_by_login[login] = self._calls_by_login.get(login, 0) + 1
        for name, value in (
            ("x-ratelimit-limit", RATE_LIMIT),
            ("x-ratelimit-remaining", max(RATE_LIMIT - used, 0)),
            ("x-ratelimit-used", used),
            ("x-ratelimit-reset", self._rate_limit_reset),
            ("x-ratelimit-resource", "core"),
        ):
            response.headers.setdefault(name, str(value))

    def _user(self, login: str) -> GitHubUser:
        try:
            return self._users[login.lower()]
        except KeyError:
            raise KeyError(f"no GitHub user {login!r}; add_user() first") from None

    def _token(self, token: str) -> _Token:
        found = self._access_tokens.get(token) or self._refresh_tokens.get(token)
        if found is None:
            raise KeyError(f"the fake never issued {token!r}")
        return found

    def _repo(self, user: GitHubUser, owner: str, name: str) -> GitHubRepo:
        """The repository, only when ``user`` owns it: 404 otherwise, even when public."""
        for repo in self._repos:
            if repo.full_name.lower() == f"{owner}/{name}".lower() and repo.owner is user:
                return repo
        raise _api_error(404, "Not Found")

    def _new_issue(
        self, repo: GitHubRepo, user: GitHubUser, title: str, body: str, state: str
    ) -> GitHubIssue:
        issue = GitHubIssue(
            id=next(self._ids),
            number=len(repo.issues) + 1,
            title=title,
            body=body,
            state=state,
            user=user,
            created_at=datetime.now(UTC),
        )
        repo.issues.append(issue)
        return issue

    # OAuth pages

    def _authorize(self, request: Request) -> Response:
        args = request.args
        redirect_uri = args.get("redirect_uri") or self.callback_url
        state, challenge = args.get("state"), args.get("code_challenge")
        self._authorize_requests.append(
            AuthorizeRequest(
                client_id=args.get("client_id", ""),
                redirect_uri=args.get("redirect_uri"),
                state=state,
                scope=args.get("scope", ""),
                code_challenge=challenge,
                code_challenge_method=args.get("code_challenge_method"),
                login=self._signed_in,
            )
        )
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

    # REST API

    def _authenticate(self, request: Request) -> GitHubUser:
        token = _presented_token(request)
        if token is None:
            raise _api_error(401, "Requires authentication")
        found = self._access_tokens.get(token)
        if found is None or not found.usable():
            raise _api_error(401, "Bad credentials")
        return self._user(found.grant.login)

    def _user_json(self, user: GitHubUser) -> dict[str, object]:
        return {
            "login": user.login,
            "id": user.id,
            "node_id": f"U_{user.id}",
            "type": "User",
            "name": user.name,
            "email": user.email,
            "html_url": f"{self.base_url}{user.login}",
            "url": f"{self.api_url}users/{user.login}",
        }

    def _repo_json(self, repo: GitHubRepo) -> dict[str, object]:
        return {
            "id": repo.id,
            "node_id": f"R_{repo.id}",
            "name": repo.name,
            "full_name": repo.full_name,
            "owner": {"login": repo.owner.login, "id": repo.owner.id, "type": "User"},
            "private": repo.private,
            "visibility": "private" if repo.private else "public",
            "description": repo.description,
            "fork": False,
            "html_url": f"{self.base_url}{repo.full_name}",
            "url": f"{self.api_url}repos/{repo.full_name}",
            "default_branch": "main",
            "open_issues_count": sum(issue.state == "open" for issue in repo.issues),
            "created_at": _iso(repo.created_at),
            "updated_at": _iso(repo.created_at),
            "pushed_at": _iso(repo.created_at),
        }

    def _issue_json(self, repo: GitHubRepo, issue: GitHubIssue) -> dict[str, object]:
        return {
            "id": issue.id,
            "node_id": f"I_{issue.id}",
            "number": issue.number,
            "title": issue.title,
            "body": issue.body,
            "state": issue.state,
            "user": {"login": issue.user.login, "id": issue.user.id, "type": "User"},
            "labels": [],
            "comments": len(issue.comments),
            "html_url": f"{self.base_url}{repo.full_name}/issues/{issue.number}",
            "url": f"{self.api_url}repos/{repo.full_name}/issues/{issue.number}",
            "created_at": _iso(issue.created_at),
            "updated_at": _iso(issue.created_at),
            "closed_at": None,
        }

    def _paginate(self, request: Request, items: list[dict[str, object]]) -> Response:
        """One page of ``items`` (``per_page`` up to 100, default 30) and GitHub's Link header."""
        per_page = _int_arg(request, "per_page", 30, 1, 100)
        page = _int_arg(request, "page", 1, 1, 1_000_000)
        response = _json(items[(page - 1) * per_page : page * per_page])
        last = max(1, -(-len(items) // per_page))
        links = {"prev": page - 1, "next": page + 1, "first": 1, "last": last}
        wanted = [(rel, n) for rel, n in links.items() if 1 <= n <= last and n != page]
        query = request.args.to_dict()
        if wanted:
            response.headers["Link"] = ", ".join(
                f'<{request.base_url}?{urlencode({**query, "page": n})}>; rel="{rel}"'
                for rel, n in wanted
            )
        return response

    def _get_user(self, request: Request) -> Response:
        return _json(self._user_json(self._authenticate(request)))

    def _list_emails(self, request: Request) -> Response:
        user = self._authenticate(request)
        return _json(
            [
                {
                    "email": user.email,
                    "primary": True,
                    "verified": user.email_verified,
                    "visibility": "public",
                }
            ]
        )

    def _list_repos(self, request: Request) -> Response:
        user = self._authenticate(request)
        repos = [repo for repo in self._repos if repo.owner is user]
        sort = request.args.get("sort", "full_name")
        if sort == "full_name":
            repos.sort(key=lambda repo: repo.full_name.lower())
        else:  # created, updated, pushed: newest first, as GitHub defaults
            repos.sort(key=lambda repo: (repo.created_at, repo.id), reverse=True)
        direction = request.args.get("direction")
        if direction in {"asc", "desc"} and (direction == "desc") != (sort != "full_name"):
            repos.reverse()
        return self._paginate(request, [self._repo_json(repo) for repo in repos])

    def _list_issues(self, request: Request, owner: str, repo: str) -> Response:
        found = self._repo(self._authenticate(request), owner, repo)
        state = request.args.get("state", "open")
        issues = [i for i in found.issues if state == "all" or i.state == state]
        issues.sort(key=lambda issue: issue.number, reverse=True)  # newest first
        return self._paginate(request, [self._issue_json(found, issue) for issue in issues])

    def _get_issue(self, request: Request, owner: str, repo: str, number: int) -> Response:
        found = self._repo(self._authenticate(request), owner, repo)
        return _json(self._issue_json(found, self._issue_in(found, number)))

    @staticmethod
    def _issue_in(repo: GitHubRepo, number: int) -> GitHubIssue:
        if not 1 <= number <= len(repo.issues):
            raise _api_error(404, "Not Found")
        return repo.issues[number - 1]

    @staticmethod
    def _json_body(request: Request, required: str) -> dict[str, object]:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise _api_error(400, "Problems parsing JSON")
        if not isinstance(body.get(required), str) or not body[required]:
            raise _Reply(
                _json(
                    {
                        "message": "Validation Failed",
                        "errors": [
                            {"resource": "Issue", "code": "missing_field", "field": required}
                        ],
                        "documentation_url": DOCS_URL,
                    },
                    422,
                )
            )
        return body

    def _create_issue(self, request: Request, owner: str, repo: str) -> Response:
        user = self._authenticate(request)
        found = self._repo(user, owner, repo)
        body = self._json_body(request, "title")
        issue = self._new_issue(
            found, user, str(body["title"]), str(body.get("body") or ""), "open"
        )
        return _json(self._issue_json(found, issue), 201)

    def _create_comment(self, request: Request, owner: str, repo: str, number: int) -> Response:
        user = self._authenticate(request)
        found = self._repo(user, owner, repo)
        issue = self._issue_in(found, number)
        body = self._json_body(request, "body")
        comment_id = next(self._ids)
        issue_url = f"{self.base_url}{found.full_name}/issues/{issue.number}"
        comment = GitHubComment(
            id=comment_id,
            body=str(body["body"]),
            user=user,
            html_url=f"{issue_url}#issuecomment-{comment_id}",
            created_at=datetime.now(UTC),
        )
        issue.comments.append(comment)
        return _json(
            {
                "id": comment.id,
                "body": comment.body,
                "user": {"login": user.login, "id": user.id, "type": "User"},
                "html_url": comment.html_url,
                "issue_url": f"{self.api_url}repos/{found.full_name}/issues/{issue.number}",
                "created_at": _iso(comment.created_at),
            },
            201,
        )

    def _app_token(self, request: Request, client_id: str) -> _Token:
        """The token named in the body of an app-authenticated (HTTP Basic) request."""
        auth = request.authorization
        basic = (auth.username, auth.password) if auth and auth.type == "basic" else None
        if client_id != self.client_id or basic != (self.client_id, self.client_secret):
            raise _api_error(401, "Requires authentication")
        body = request.get_json(silent=True)
        token = body.get("access_token") if isinstance(body, dict) else None
        found = self._access_tokens.get(token) if isinstance(token, str) else None
        if found is None or not found.usable():
            raise _api_error(404, "Not Found")
        return found

    def _delete_token(self, request: Request, client_id: str) -> Response:
        token = self._app_token(request, client_id)
        token.revoked = True
        paired = self._refresh_tokens.get(token.paired or "")
        if paired is not None:
            paired.revoked = True
        return Response(status=204)

    def _delete_grant(self, request: Request, client_id: str) -> Response:
        """Deleting the grant revokes every token the person gave this app."""
        self.revoke_authorization(self._app_token(request, client_id).grant.login)
        return Response(status=204)
