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

Modules: ``state`` (what the fake holds), ``oauth`` (authorize and token endpoints), ``rest``
(the API endpoints), ``replies`` (answer helpers), ``fake`` (FakeGitHub and its routing); the
server is ``tests/fakes/loopback.py``.
"""

from tests.fakes.github.fake import RATE_LIMIT, FakeGitHub
from tests.fakes.github.oauth import (
    CLIENT_ID,
    CLIENT_SECRET,
    REFRESH_TOKEN_LIFETIME,
    IssuedTokens,
    s256_challenge,
)
from tests.fakes.github.replies import DOCS_URL
from tests.fakes.github.state import (
    ApiRequest,
    AuthorizeRequest,
    GitHubComment,
    GitHubIssue,
    GitHubRepo,
    GitHubUser,
)
from tests.fakes.loopback import LoopbackServer

__all__ = [
    "CLIENT_ID",
    "CLIENT_SECRET",
    "DOCS_URL",
    "RATE_LIMIT",
    "REFRESH_TOKEN_LIFETIME",
    "ApiRequest",
    "AuthorizeRequest",
    "FakeGitHub",
    "GitHubComment",
    "GitHubIssue",
    "GitHubRepo",
    "GitHubUser",
    "IssuedTokens",
    "LoopbackServer",
    "s256_challenge",
]
