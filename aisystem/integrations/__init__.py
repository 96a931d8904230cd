"""Integrations: each person connects their own GitHub or Google account, and the assistant
then acts with that person's token.

This package is part of aisystem's core (only ``views`` and ``urls`` are a surface):

* ``base`` and ``registry``: what a provider is, and the providers staff configured;
* ``github``, ``google``: one module per provider: its social-auth backend, scopes, revoke and
  refresh calls, and its API client;
* ``http``: the HTTP client those API clients share (timeouts, retries, the call log);
* ``links``: the signed one-time links ``/connect`` sends;
* ``flow``: social-auth pipeline steps that bind an account to the person who asked;
* ``accounts``: reading and disconnecting a person's accounts;
* ``tokens``: the only way to a usable access token: refreshed ahead of expiry, single-flight
  across processes, and "needs reconnect" when the provider says no.

Adding a provider: one module here with a ``Provider`` subclass (its backend, scopes, revoke,
refresh and API client), one entry in ``registry.PROVIDERS``, its settings in
``settings.INTEGRATIONS``, and its tools in ``pipeline/tools/``.
"""
