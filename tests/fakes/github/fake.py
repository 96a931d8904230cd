"""FakeGitHub: the fake's public face (starting it, arranging the world, steering and
observing it) and the plumbing that routes each request to the OAuth or REST views."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Self

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from tests.fakes.github.oauth import (
    CLIENT_ID,
    CLIENT_SECRET,
    IssuedTokens,
    _normalise_scope,
    _OAuthEndpoints,
)
from tests.fakes.github.replies import DOCS_URL, _api_error, _json, _Reply
from tests.fakes.github.rest import _presented_token, _RestEndpoints
from tests.fakes.github.state import (
    ApiRequest,
    AuthorizeRequest,
    GitHubIssue,
    GitHubRepo,
    GitHubUser,
    _Failure,
    _Grant,
)
from tests.fakes.loopback import LoopbackServer

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

RATE_LIMIT = 5000


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


class FakeGitHub(_OAuthEndpoints, _RestEndpoints):
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
        super().__init__(
            client_id=client_id,
            client_secret=client_secret,
            callback_url=callback_url,
            expiring_tokens=expiring_tokens,
            token_lifetime=token_lifetime,
        )
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
            self._revoke_grants(login)

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
