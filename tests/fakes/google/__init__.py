"""Loopback fakes of Google for the Calendar integration: the accounts server (OpenID
Connect, through oidc-provider-mock) and a small Calendar API, both real HTTP servers.

oidc-provider-mock 0.3.4 (authlib on Flask) supplies the authorize page, the token endpoint
(authorization code and refresh grants), signed ID tokens, JWKS, discovery and userinfo. A
thin WSGI layer in front of it adds what Google does and the mock does not:

* PKCE: the mock ignores ``code_challenge``; the layer checks ``code_verifier`` (S256 or
  plain) and answers ``invalid_grant`` as Google does.
* Refresh tokens: the mock issues one with every code. The layer passes it on only when the
  authorize request said ``access_type=offline`` and this is the person's first consent to
  this app (or ``prompt=consent`` asked again), as Google does.
* Refresh requests with the client secret in the form body: the mock accepts only HTTP Basic
  for that grant, so the layer moves the credentials into the header. It counts them too.
* Revocation: the mock has none. ``POST /revoke`` (form ``token=``, like
  https://oauth2.googleapis.com/revoke) deletes the token from the mock's own storage along
  with every other token of the same subject (Google revokes the grant; with one client per
  test that is the same set), so userinfo and the calendar refuse them at once.
* Discovery gains ``revocation_endpoint`` and ``code_challenge_methods_supported``.

Remaining differences: refreshing does not rotate the refresh token (as Google), but it deletes
the access token issued with the code (Google lets it live until it expires); refreshed tokens
live 3600 s whatever ``access_token_lifetime`` says; scopes outside OpenID's and Calendar's
are dropped silently; the issuer is ``http://127.0.0.1:PORT``, not https://accounts.google.com.
The mock's authorize page asks only for the subject (``sub``): ``authorize`` stores the other
claims (email, email_verified, name) in the mock before submitting the form.

The layer reaches into the mock's internals (its ``Storage`` and ``Client``, as of 0.3.4);
tests/fakes/test_provider_fakes.py notices if an upgrade moves them.

Modules: ``state`` (what the fake holds, the mock's storage included), ``accounts`` (the
layer in front of the mock), ``calendar_api`` (the Calendar server), ``replies`` (answer
helpers), ``fake`` (FakeGoogle); the servers are ``tests/fakes/loopback.py``'s.
"""

from tests.fakes.google.fake import FakeGoogle
from tests.fakes.google.state import (
    CALENDAR_EVENTS_SCOPE,
    CALENDAR_SCOPE,
    CLIENT_ID,
    CLIENT_SECRET,
    DEFAULT_SCOPE,
    CalendarEvent,
    CalendarRequest,
    GoogleAuthorizeRequest,
)

__all__ = [
    "CALENDAR_EVENTS_SCOPE",
    "CALENDAR_SCOPE",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "DEFAULT_SCOPE",
    "CalendarEvent",
    "CalendarRequest",
    "FakeGoogle",
    "GoogleAuthorizeRequest",
]
