"""The OAuth provider fakes speak the protocols the real clients expect: these pin it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
import pytest
import requests
from social_core.backends.oauth import BaseOAuth2PKCE

from tests.fakes.github import FakeGitHub, s256_challenge
from tests.fakes.google import CALENDAR_EVENTS_SCOPE, FakeGoogle

# authlib, under oidc-provider-mock, warns about its own legacy hook on every ID token.
pytestmark = pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning")

CALLBACK = "http://127.0.0.1:8000/oauth/complete/github/"
GOOGLE_CALLBACK = "http://127.0.0.1:8000/oauth/complete/google-oauth2/"


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


# GitHub


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(callback_url=CALLBACK) as fake:
        fake.add_user("alice", email="alice@example.com", name="Alice Liddell")
        fake.add_user("bob", email="bob@example.com", email_verified=False)
        fake.sign_in_as("alice")
        yield fake


@pytest.fixture
def expiring_github() -> Iterator[FakeGitHub]:
    with FakeGitHub(expiring_tokens=True, token_lifetime=28_800) as fake:
        fake.add_user("alice")
        yield fake


def github_code(github: FakeGitHub, verifier: str | None, state: str = "state-1") -> str:
    params = {"client_id": github.client_id, "redirect_uri": CALLBACK, "state": state}
    params["scope"] = "repo,user:email"
    if verifier is not None:
        params |= {"code_challenge": s256_challenge(verifier), "code_challenge_method": "S256"}
    answer = requests.get(github.authorize_url, params=params, allow_redirects=False, timeout=5)
    assert answer.status_code == 302
    return query_of(answer.headers["Location"])["code"]


def github_exchange(
    github: FakeGitHub, code: str, verifier: str | None, secret: str | None = None
) -> dict[str, object]:
    form = {
        "client_id": github.client_id,
        "client_secret": secret or github.client_secret,
        "code": code,
        "redirect_uri": CALLBACK,
    }
    if verifier is not None:
        form["code_verifier"] = verifier
    answer = requests.post(
        github.access_token_url, data=form, headers={"Accept": "application/json"}, timeout=5
    )
    assert answer.status_code == 200  # GitHub answers token errors with 200 too
    tokens: dict[str, object] = answer.json()
    return tokens


def github_api(
    github: FakeGitHub, method: str, path: str, token: str, **kwargs: object
) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json"}
    return requests.request(method, github.api_url + path, headers=headers, timeout=5, **kwargs)  # type: ignore[arg-type]


def github_refresh(github: FakeGitHub, refresh_token: str) -> dict[str, object]:
    form = {
        "client_id": github.client_id,
        "client_secret": github.client_secret,
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
    }
    answer = requests.post(
        github.access_token_url, data=form, headers={"Accept": "application/json"}, timeout=5
    )
    tokens: dict[str, object] = answer.json()
    return tokens


def test_authorize_redirects_to_the_callback_with_a_code_and_the_same_state(
    github: FakeGitHub,
) -> None:
    verifier = secrets.token_urlsafe(32)
    state = "a/b+c==?"
    answer = requests.get(
        github.authorize_url,
        params={
            "client_id": github.client_id,
            "redirect_uri": CALLBACK,
            "state": state,
            "scope": "repo user:email",
            "code_challenge": s256_challenge(verifier),
            "code_challenge_method": "S256",
        },
        allow_redirects=False,
        timeout=5,
    )

    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith(CALLBACK)
    assert query_of(location)["state"] == state and query_of(location)["code"]
    [seen] = github.authorize_requests
    assert (seen.state, seen.scope, seen.login) == (state, "repo user:email", "alice")
    assert (seen.code_challenge, seen.code_challenge_method) == (s256_challenge(verifier), "S256")


def test_the_fakes_s256_challenge_is_the_one_social_core_sends() -> None:
    verifier = secrets.token_urlsafe(32)
    # social-core's helper ignores ``self`` for S256; calling it unbound avoids a strategy.
    assert s256_challenge(verifier) == BaseOAuth2PKCE.generate_code_challenge(
        None,  # type: ignore[arg-type]
        verifier,
        "S256",
    )


def test_an_unknown_client_gets_an_error_page(github: FakeGitHub) -> None:
    answer = requests.get(
        github.authorize_url,
        params={"client_id": "someone-else", "redirect_uri": CALLBACK},
        allow_redirects=False,
        timeout=5,
    )

    assert answer.status_code == 400
    assert "Unknown OAuth application" in answer.text


def test_a_redirect_uri_outside_the_registered_callback_is_refused(github: FakeGitHub) -> None:
    answer = requests.get(
        github.authorize_url,
        params={"client_id": github.client_id, "redirect_uri": "http://evil.test/", "state": "s"},
        allow_redirects=False,
        timeout=5,
    )

    assert query_of(answer.headers["Location"])["error"] == "redirect_uri_mismatch"
    assert answer.headers["Location"].startswith(CALLBACK)


def test_the_code_and_the_right_verifier_buy_a_token(github: FakeGitHub) -> None:
    verifier = secrets.token_urlsafe(32)

    tokens = github_exchange(github, github_code(github, verifier), verifier)

    assert tokens["token_type"] == "bearer" and tokens["scope"] == "repo,user:email"
    assert str(tokens["access_token"]).startswith("gho_")
    assert "refresh_token" not in tokens


def test_a_wrong_or_missing_verifier_is_refused(github: FakeGitHub) -> None:
    verifier = secrets.token_urlsafe(32)

    wrong = github_exchange(github, github_code(github, verifier), "not-the-verifier")
    missing = github_exchange(github, github_code(github, verifier), None)

    assert wrong["error"] == missing["error"] == "bad_verification_code"
    assert "access_token" not in wrong


def test_a_code_buys_one_token_and_replaying_it_revokes_that_token(github: FakeGitHub) -> None:
    code = github_code(github, None)
    first = github_exchange(github, code, None)

    again = github_exchange(github, code, None)

    assert again["error"] == "bad_verification_code"
    assert github_api(github, "GET", "user", str(first["access_token"])).status_code == 401


def test_a_wrong_client_secret_is_refused(github: FakeGitHub) -> None:
    tokens = github_exchange(github, github_code(github, None), None, secret="guess")

    assert tokens["error"] == "incorrect_client_credentials"


def test_without_accept_json_the_token_answer_is_form_encoded(github: FakeGitHub) -> None:
    form = {"client_id": github.client_id, "client_secret": github.client_secret}
    form["code"] = github_code(github, None)

    answer = requests.post(github.access_token_url, data=form, timeout=5)

    assert answer.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert dict(parse_qsl(answer.text))["token_type"] == "bearer"


def test_the_api_wants_a_valid_token_as_bearer_or_token(github: FakeGitHub) -> None:
    token = github.issue_tokens("alice").access_token

    missing = requests.get(github.api_url + "user", timeout=5)
    bad = github_api(github, "GET", "user", "gho_nonsense")
    legacy = requests.get(
        github.api_url + "user", headers={"Authorization": f"token {token}"}, timeout=5
    )

    assert (missing.status_code, bad.status_code) == (401, 401)
    assert bad.json()["message"] == "Bad credentials"
    assert legacy.json()["login"] == "alice"
    assert legacy.headers["x-ratelimit-limit"] == "5000"
    assert [r.token for r in github.api_requests] == [None, "gho_nonsense", token]


def test_user_and_emails_describe_the_tokens_owner(github: FakeGitHub) -> None:
    token = github.issue_tokens("bob", scope="user:email").access_token

    user = github_api(github, "GET", "user", token).json()
    emails = github_api(github, "GET", "user/emails", token).json()

    assert (user["login"], user["email"]) == ("bob", "bob@example.com")
    assert emails == [
        {"email": "bob@example.com", "primary": True, "verified": False, "visibility": "public"}
    ]


def test_people_see_only_their_own_repositories(github: FakeGitHub) -> None:
    github.add_repo("alice", "diary", private=True)
    github.add_repo("bob", "public-notes")
    github.add_issue("bob", "public-notes", "Bob's issue")
    alice = github.issue_tokens("alice").access_token

    repos = github_api(github, "GET", "user/repos", alice).json()
    bobs_issues = github_api(github, "GET", "repos/bob/public-notes/issues", alice)
    bobs_issue = github_api(github, "GET", "repos/bob/public-notes/issues/1", alice)

    assert [repo["full_name"] for repo in repos] == ["alice/diary"]
    assert (bobs_issues.status_code, bobs_issue.status_code) == (404, 404)
    assert bobs_issues.json()["message"] == "Not Found"


def test_repositories_come_in_pages_with_a_link_header(github: FakeGitHub) -> None:
    for name in ("c", "a", "b"):
        github.add_repo("alice", name)
    token = github.issue_tokens("alice").access_token

    first = github_api(github, "GET", "user/repos", token, params={"per_page": 2})
    second = github_api(github, "GET", "user/repos", token, params={"per_page": 2, "page": 2})

    assert [repo["name"] for repo in first.json()] == ["a", "b"]
    assert [repo["name"] for repo in second.json()] == ["c"]
    assert first.links["next"]["url"] == second.url
    assert "next" not in second.links


def test_issues_and_comments_are_created_with_links_to_them(github: FakeGitHub) -> None:
    github.add_repo("alice", "diary")
    token = github.issue_tokens("alice").access_token

    created = github_api(
        github, "POST", "repos/alice/diary/issues", token, json={"title": "Hi", "body": "There"}
    )
    comment = github_api(
        github, "POST", "repos/alice/diary/issues/1/comments", token, json={"body": "Me too"}
    )
    untitled = github_api(github, "POST", "repos/alice/diary/issues", token, json={"body": "x"})

    assert created.status_code == 201
    assert created.json()["html_url"] == f"{github.base_url}alice/diary/issues/1"
    assert comment.status_code == 201
    assert comment.json()["html_url"].startswith(f"{github.base_url}alice/diary/issues/1#")
    assert untitled.status_code == 422
    [issue] = github.repo("alice", "diary").issues
    assert (issue.title, [c.body for c in issue.comments]) == ("Hi", ["Me too"])


def test_issues_are_filtered_by_state(github: FakeGitHub) -> None:
    github.add_repo("alice", "diary")
    github.add_issue("alice", "diary", "open one")
    github.add_issue("alice", "diary", "closed one", state="closed")
    token = github.issue_tokens("alice").access_token

    def titles(state: str) -> list[str]:
        answer = github_api(
            github, "GET", "repos/alice/diary/issues", token, params={"state": state}
        )
        return [issue["title"] for issue in answer.json()]

    assert titles("open") == ["open one"]
    assert titles("all") == ["closed one", "open one"]
    single = github_api(github, "GET", "repos/alice/diary/issues/2", token).json()
    assert single["state"] == "closed"


def test_a_revoked_token_stops_working(github: FakeGitHub) -> None:
    token = github.issue_tokens("alice").access_token
    url = f"{github.api_url}applications/{github.client_id}/token"
    app_auth = (github.client_id, github.client_secret)

    wrong_auth = requests.delete(url, auth=("x", "y"), json={"access_token": token}, timeout=5)
    revoked = requests.delete(url, auth=app_auth, json={"access_token": token}, timeout=5)
    unknown = requests.delete(url, auth=app_auth, json={"access_token": token}, timeout=5)

    assert (wrong_auth.status_code, revoked.status_code, unknown.status_code) == (401, 204, 404)
    assert github_api(github, "GET", "user", token).status_code == 401


def test_expiring_tokens_refresh_by_rotation(expiring_github: FakeGitHub) -> None:
    github = expiring_github
    first = github.issue_tokens("alice")
    assert first.refresh_token is not None

    second = github_refresh(github, first.refresh_token)

    assert second["expires_in"] == 28_800
    assert str(second["access_token"]).startswith("ghu_")
    assert str(second["refresh_token"]).startswith("ghr_")
    assert second["refresh_token"] != first.refresh_token
    assert github_api(github, "GET", "user", str(second["access_token"])).status_code == 200
    assert github_api(github, "GET", "user", first.access_token).status_code == 401
    assert github.refresh_requests == 1


def test_a_reused_refresh_token_revokes_the_whole_grant(expiring_github: FakeGitHub) -> None:
    github = expiring_github
    first = github.issue_tokens("alice")
    assert first.refresh_token is not None
    second = github_refresh(github, first.refresh_token)

    reused = github_refresh(github, first.refresh_token)

    assert reused["error"] == "bad_refresh_token"
    assert github_api(github, "GET", "user", str(second["access_token"])).status_code == 401
    assert github_refresh(github, str(second["refresh_token"]))["error"] == "bad_refresh_token"
    assert github.refresh_requests == 3


def test_an_expired_access_token_is_refused_until_refreshed(expiring_github: FakeGitHub) -> None:
    github = expiring_github
    tokens = github.issue_tokens("alice")
    assert tokens.refresh_token is not None

    github.expire_tokens()

    assert github_api(github, "GET", "user", tokens.access_token).status_code == 401
    fresh = github_refresh(github, tokens.refresh_token)
    assert github_api(github, "GET", "user", str(fresh["access_token"])).status_code == 200


def test_an_injected_secondary_rate_limit_says_when_to_retry(github: FakeGitHub) -> None:
    token = github.issue_tokens("alice").access_token
    github.fail_next("GET", "/api/v3/user/repos", 429, retry_after=7)

    limited = github_api(github, "GET", "user/repos", token)
    retried = github_api(github, "GET", "user/repos", token)

    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "7")
    assert "secondary rate limit" in limited.json()["message"]
    assert retried.status_code == 200


def test_an_injected_primary_rate_limit_and_bad_gateway(github: FakeGitHub) -> None:
    token = github.issue_tokens("alice").access_token
    github.fail_next("GET", "/api/v3/user", 403)
    github.fail_next("POST", "/login/oauth/access_token", 502, times=2)

    limited = github_api(github, "GET", "user", token)
    gateway = [requests.post(github.access_token_url, timeout=5).status_code for _ in range(3)]

    assert (limited.status_code, limited.headers["x-ratelimit-remaining"]) == (403, "0")
    assert gateway == [502, 502, 200]


# Google


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    with FakeGoogle() as fake:
        yield fake


def google_authorize_url(google: FakeGoogle, verifier: str, **extra: str) -> str:
    query = {
        "client_id": google.client_id,
        "response_type": "code",
        "redirect_uri": GOOGLE_CALLBACK,
        "scope": f"openid email profile {CALENDAR_EVENTS_SCOPE}",
        "state": "google-state",
        "code_challenge": s256_challenge(verifier),
        "code_challenge_method": "S256",
        "access_type": "offline",
        **extra,
    }
    return f"{google.authorization_url}?{urlencode(query)}"


def google_exchange(
    google: FakeGoogle, callback: str, verifier: str | None, secret: str | None = None
) -> requests.Response:
    form = {
        "grant_type": "authorization_code",
        "code": query_of(callback)["code"],
        "redirect_uri": GOOGLE_CALLBACK,
        "client_id": google.client_id,
        "client_secret": secret or google.client_secret,
    }
    if verifier is not None:
        form["code_verifier"] = verifier
    return requests.post(google.token_url, data=form, timeout=5)


def google_refresh(google: FakeGoogle, refresh_token: str) -> requests.Response:
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": google.client_id,
        "client_secret": google.client_secret,
    }
    return requests.post(google.token_url, data=form, timeout=5)


def calendar(
    google: FakeGoogle, method: str, token: str | None, **kwargs: object
) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = google.calendar_url + "calendars/primary/events"
    return requests.request(method, url, headers=headers, timeout=5, **kwargs)  # type: ignore[arg-type]


def verified_id_token(google: FakeGoogle, id_token: str) -> dict[str, object]:
    """The ID token's claims, checked with PyJWT (what social-core uses) against the JWKS."""
    [key] = requests.get(google.jwks_url, timeout=5).json()["keys"]
    claims: dict[str, object] = jwt.decode(
        id_token,
        key=jwt.PyJWK(key).key,
        algorithms=["RS256"],
        audience=google.client_id,
        issuer=google.issuer,
    )
    return claims


def test_the_oidc_flow_yields_tokens_an_id_token_and_userinfo(google: FakeGoogle) -> None:
    verifier = secrets.token_urlsafe(48)
    discovery = requests.get(f"{google.issuer}/.well-known/openid-configuration", timeout=5)

    with requests.Session() as session:
        callback = google.authorize(
            session,
            google_authorize_url(google, verifier, nonce="n-0S6"),
            "sub-alice",
            "alice@gmail.com",
        )
    tokens = google_exchange(google, callback, verifier).json()
    userinfo = requests.get(
        google.userinfo_url,
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=5,
    ).json()

    assert discovery.json()["issuer"] == google.issuer
    assert discovery.json()["revocation_endpoint"] == google.revoke_url
    assert callback.startswith(GOOGLE_CALLBACK) and query_of(callback)["state"] == "google-state"
    assert tokens["refresh_token"] and tokens["token_type"] == "Bearer"
    id_token = verified_id_token(google, tokens["id_token"])
    assert (id_token["sub"], id_token["nonce"], id_token["email"]) == (
        "sub-alice",
        "n-0S6",
        "alice@gmail.com",
    )
    assert userinfo == {
        "sub": "sub-alice",
        "email": "alice@gmail.com",
        "email_verified": True,
        "name": "Alice",
    }
    [seen] = google.authorize_requests
    assert (seen.access_type, seen.code_challenge_method) == ("offline", "S256")


def test_google_refuses_a_wrong_or_missing_verifier(google: FakeGoogle) -> None:
    verifier = secrets.token_urlsafe(48)
    with requests.Session() as session:
        first = google.authorize(session, google_authorize_url(google, verifier), "s", "s@x.test")
        second = google.authorize(session, google_authorize_url(google, verifier), "s", "s@x.test")

    wrong = google_exchange(google, first, "wrong-verifier")
    missing = google_exchange(google, second, None)
    retried = google_exchange(google, first, verifier)

    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")
    assert wrong.json()["error_description"] == "Invalid code verifier."
    assert missing.json()["error_description"] == "Missing code verifier."
    assert retried.json()["error"] == "invalid_grant"  # the refused code is spent


def test_google_refuses_a_wrong_client_secret(google: FakeGoogle) -> None:
    verifier = secrets.token_urlsafe(48)
    with requests.Session() as session:
        callback = google.authorize(
            session, google_authorize_url(google, verifier), "s", "s@x.test"
        )

    answer = google_exchange(google, callback, verifier, secret="guess")

    assert (answer.status_code, answer.json()["error"]) == (401, "invalid_client")


def test_a_refresh_token_comes_only_with_offline_access_on_first_consent(
    google: FakeGoogle,
) -> None:
    def tokens_for(**extra: str) -> dict[str, object]:
        verifier = secrets.token_urlsafe(48)
        with requests.Session() as session:
            url = google_authorize_url(google, verifier, **extra)
            callback = google.authorize(session, url, "sub-bob", "bob@gmail.com")
        answer: dict[str, object] = google_exchange(google, callback, verifier).json()
        return answer

    online = tokens_for(access_type="online")
    first_offline = tokens_for()
    again = tokens_for()
    reconsented = tokens_for(prompt="consent")

    assert "refresh_token" not in online and "access_token" in online
    assert "refresh_token" in first_offline
    assert "refresh_token" not in again
    assert "refresh_token" in reconsented


def test_refreshing_with_the_secret_in_the_body_gives_a_new_access_token(
    google: FakeGoogle,
) -> None:
    tokens = google.obtain_tokens("sub-alice", "alice@gmail.com")
    google.expire_access_tokens()
    assert calendar(google, "GET", str(tokens["access_token"])).status_code == 401

    refreshed = google_refresh(google, str(tokens["refresh_token"]))

    assert refreshed.status_code == 200
    assert "refresh_token" not in refreshed.json()  # Google does not rotate them
    assert calendar(google, "GET", refreshed.json()["access_token"]).status_code == 200
    assert google.refresh_requests == 1


def test_calendar_events_are_created_and_listed_per_person(google: FakeGoogle) -> None:
    alice = str(google.obtain_tokens("sub-alice", "alice@gmail.com")["access_token"])
    bob = str(google.obtain_tokens("sub-bob", "bob@gmail.com")["access_token"])
    event = {
        "summary": "Dentist",
        "description": "Bring the card",
        "start": {"dateTime": "2030-05-01T09:00:00+02:00"},
        "end": {"dateTime": "2030-05-01T10:00:00+02:00"},
    }

    created = calendar(google, "POST", alice, json=event)
    alices = calendar(google, "GET", alice, params={"singleEvents": "true", "orderBy": "startTime"})
    bobs = calendar(google, "GET", bob)

    assert created.status_code == 200
    assert created.json()["id"] and created.json()["htmlLink"]
    assert created.json()["creator"]["email"] == "alice@gmail.com"
    assert [item["summary"] for item in alices.json()["items"]] == ["Dentist"]
    assert bobs.json()["items"] == []
    assert [e.summary for e in google.events("sub-alice")] == ["Dentist"]


def test_calendar_lists_the_window_in_start_order(google: FakeGoogle) -> None:
    token = str(google.obtain_tokens("sub-alice", "alice@gmail.com")["access_token"])
    noon = datetime(2030, 5, 1, 12, tzinfo=UTC)
    for summary, hours in (("late", 5), ("early", 1), ("outside", 30)):
        start = noon + timedelta(hours=hours)
        google.add_event("sub-alice", summary=summary, start=start, end=start + timedelta(hours=1))
    params = {
        "timeMin": noon.isoformat(),
        "timeMax": (noon + timedelta(days=1)).isoformat(),
        "singleEvents": "true",
        "orderBy": "startTime",
        "maxResults": "1",
    }

    first = calendar(google, "GET", token, params=params).json()
    second = calendar(
        google, "GET", token, params={**params, "pageToken": first["nextPageToken"]}
    ).json()
    unordered = calendar(google, "GET", token, params={"orderBy": "startTime"})

    assert [item["summary"] for item in first["items"] + second["items"]] == ["early", "late"]
    assert "nextPageToken" not in second
    assert unordered.status_code == 400


def test_calendar_refuses_missing_unknown_and_underscoped_tokens(google: FakeGoogle) -> None:
    readonly = google.obtain_tokens("sub-alice", "a@x.test", scope="openid email")

    missing = calendar(google, "GET", None)
    unknown = calendar(google, "GET", "ya29.nonsense")
    underscoped = calendar(google, "GET", str(readonly["access_token"]))

    assert (missing.status_code, unknown.status_code, underscoped.status_code) == (401, 401, 403)
    assert missing.json()["error"]["status"] == "UNAUTHENTICATED"
    assert unknown.json()["error"]["errors"][0]["reason"] == "authError"
    assert underscoped.json()["error"]["errors"][0]["reason"] == "insufficientPermissions"


def test_revoking_a_token_ends_the_grant(google: FakeGoogle) -> None:
    tokens = google.obtain_tokens("sub-alice", "alice@gmail.com")

    revoked = requests.post(google.revoke_url, data={"token": tokens["access_token"]}, timeout=5)
    again = requests.post(google.revoke_url, data={"token": tokens["access_token"]}, timeout=5)

    assert (revoked.status_code, again.status_code) == (200, 400)
    assert calendar(google, "GET", str(tokens["access_token"])).status_code == 401
    assert google_refresh(google, str(tokens["refresh_token"])).json()["error"] == "invalid_grant"


def test_an_injected_calendar_rate_limit_says_when_to_retry(google: FakeGoogle) -> None:
    token = str(google.obtain_tokens("sub-alice", "alice@gmail.com")["access_token"])
    google.fail_next("GET", "/calendar/v3/calendars/primary/events", 429, retry_after=3)

    limited = calendar(google, "GET", token)
    retried = calendar(google, "GET", token)

    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "3")
    assert limited.json()["error"]["errors"][0]["reason"] == "rateLimitExceeded"
    assert retried.status_code == 200
    assert [r.status for r in google.calendar_requests] == [429, 200]
