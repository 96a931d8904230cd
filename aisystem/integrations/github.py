"""GitHub (and GitHub Enterprise Server): an OAuth app, its REST API, and revoking its grant.

Settings (``settings.INTEGRATIONS["github"]``, from ``AISYSTEM_GITHUB_*``): ``CLIENT_ID``,
``CLIENT_SECRET``, ``URL`` (the OAuth pages, ``https://github.com/`` or a GHES host) and
``API_URL`` (``https://api.github.com/`` or ``https://HOST/api/v3/``). Classic OAuth-app
tokens do not expire; an app with expiring user tokens also sends a refresh token, which
``aisystem.integrations.tokens`` uses.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urljoin

from django.conf import settings
from social_core.backends.github import GithubOAuth2
from social_core.backends.oauth import BaseOAuth2PKCE

from aisystem.errors import IntegrationError
from aisystem.integrations.base import Provider
from aisystem.integrations.http import app_call
from aisystem.integrations.tokens import ProviderApi

SCOPES = ("repo", "read:user", "user:email")


def _config() -> dict[str, str]:
    return dict(settings.INTEGRATIONS["github"])


class GitHubBackend(GithubOAuth2[Any], BaseOAuth2PKCE[Any]):
    """social-core's GitHub backend with PKCE (GitHub supports S256) and its URLs and client
    from our settings, so GitHub Enterprise Server works by configuration alone."""

    name = "github"
    DEFAULT_SCOPE = list(SCOPES)
    DEFAULT_USE_PKCE = True

    def authorization_url(self) -> str:
        return urljoin(_config()["URL"], "login/oauth/authorize")

    def access_token_url(self) -> str:
        return urljoin(_config()["URL"], "login/oauth/access_token")

    def api_url(self) -> str:
        return _config()["API_URL"]

    def get_key_and_secret(self) -> tuple[str, str]:
        config = _config()
        return config["CLIENT_ID"], config["CLIENT_SECRET"]


class GitHub(Provider):
    name = "github"
    label = "GitHub"
    backend = GitHubBackend
    scopes = SCOPES
    scope_summary = "read your repositories and issues, and open issues and comments you confirm"

    def account_login(self, response: dict[str, Any], details: dict[str, Any]) -> str:
        login = response.get("login") or details.get("username") or ""
        return f"@{login}" if login else ""

    def verified_email(self, response: dict[str, Any]) -> str:
        primary = str(response.get("email") or "")
        for entry in response.get("emails") or ():
            if isinstance(entry, dict) and entry.get("email") == primary and entry.get("verified"):
                return primary
        return ""

    def revoke(self, extra_data: dict[str, Any]) -> None:
        """``DELETE /applications/{client_id}/token``, authenticated as the app: the grant ends
        at GitHub, not only here. A token GitHub no longer knows (404) counts as revoked."""
        config = _config()
        token = str(extra_data.get("access_token") or "")
        url = urljoin(config["API_URL"], f"applications/{quote(config['CLIENT_ID'])}/token")
        app_call(
            "github",
            "revoke",
            "DELETE",
            url,
            accept=(204, 404),
            label="GitHub",
            json={"access_token": token},
            auth=(config["CLIENT_ID"], config["CLIENT_SECRET"]),
            headers={"Accept": "application/vnd.github+json", "User-Agent": "aisystem"},
        )


class GitHubApi(ProviderApi):
    """GitHub's REST API with one person's token. ``repo`` is ``owner/name``."""

    service = "github"
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}

    def base_url(self) -> str:
        return _config()["API_URL"]

    def list_repos(self, *, per_page: int = 30) -> list[dict[str, Any]]:
        params = {"per_page": per_page, "sort": "pushed"}
        result: list[dict[str, Any]] = self.call("GET", "user/repos", "list_repos", params=params)
        return result

    def list_issues(
        self, repo: str, *, state: str = "open", per_page: int = 30
    ) -> list[dict[str, Any]]:
        params = {"state": state, "per_page": per_page}
        path = f"repos/{_repo_path(repo)}/issues"
        result: list[dict[str, Any]] = self.call("GET", path, "list_issues", params=params)
        return result

    def get_issue(self, repo: str, number: int) -> dict[str, Any]:
        path = f"repos/{_repo_path(repo)}/issues/{int(number)}"
        result: dict[str, Any] = self.call("GET", path, "get_issue")
        return result

    def create_issue(self, repo: str, *, title: str, body: str = "") -> dict[str, Any]:
        path = f"repos/{_repo_path(repo)}/issues"
        payload = {"title": title, "body": body}
        result: dict[str, Any] = self.call("POST", path, "create_issue", json=payload)
        return result

    def comment_issue(self, repo: str, number: int, *, body: str) -> dict[str, Any]:
        path = f"repos/{_repo_path(repo)}/issues/{int(number)}/comments"
        result: dict[str, Any] = self.call("POST", path, "comment_issue", json={"body": body})
        return result


def _repo_path(repo: str) -> str:
    owner, _, name = repo.strip().partition("/")
    if not owner or not name or "/" in name:
        raise IntegrationError("github", "repo", f"{repo!r} is not owner/name", permanent=True)
    return f"{quote(owner, safe='')}/{quote(name, safe='')}"
