"""The slice of GitHub's REST API the integrations use, under ``/api/v3/``: the person,
their emails and repositories, issues and comments, and the app's token and grant deletion."""

from __future__ import annotations

from abc import abstractmethod
from datetime import UTC, datetime
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from tests.fakes.github.replies import DOCS_URL, _api_error, _json, _Reply
from tests.fakes.github.state import (
    GitHubComment,
    GitHubIssue,
    GitHubRepo,
    GitHubUser,
    _GitHubState,
    _Token,
)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _presented_token(request: Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() not in {"bearer", "token"}:
        return None
    return value.strip() or None


def _int_arg(request: Request, name: str, default: int, low: int, high: int) -> int:
    try:
        return max(low, min(high, int(request.args.get(name, default))))
    except ValueError:
        return default


class _RestEndpoints(_GitHubState):
    """The ``/api/v3/`` views, called under ``_lock``; the links they answer with point at
    ``base_url`` and ``api_url``, which FakeGitHub provides."""

    @property
    @abstractmethod
    def base_url(self) -> str: ...

    @property
    @abstractmethod
    def api_url(self) -> str: ...

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
        self._revoke_grants(self._app_token(request, client_id).grant.login)
        return Response(status=204)
