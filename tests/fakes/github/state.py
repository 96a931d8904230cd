"""What the fake GitHub holds: its OAuth app's settings, users, repositories, issues,
codes, grants and tokens, and the requests it recorded; with the lookups on them."""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tests.fakes.github.replies import _api_error


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


class _GitHubState:
    """The state FakeGitHub and its endpoint mixins share, guarded by ``_lock``."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        callback_url: str | None,
        expiring_tokens: bool,
        token_lifetime: int,
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

    def _revoke_grants(self, login: str) -> None:
        """Every token ``login`` gave this app stops working (callers hold ``_lock``)."""
        for token in [*self._access_tokens.values(), *self._refresh_tokens.values()]:
            if token.grant.login.lower() == login.lower():
                token.grant.revoked = True
