"""The resilient HTTP layer every platform plugin shares.

A plugin gets one :class:`HttpClient` per connection (``ctx.http``) and never opens its own
session: the client paces requests to the platform's limits, authenticates, retries what is
transient and raises :mod:`salync_core.errors` for the rest.
"""

from salync_core.http.auth import OAuth2Credentials, OAuthTokens, TokenStore
from salync_core.http.classify import Action, Verdict, classify, platform_message
from salync_core.http.client import HttpClient, Timeouts
from salync_core.http.response import Response, Usage
from salync_core.http.retry import RetryPolicy
from salync_core.http.urls import check_url_security, path_segment

__all__ = [
    "Action",
    "HttpClient",
    "OAuth2Credentials",
    "OAuthTokens",
    "Response",
    "RetryPolicy",
    "Timeouts",
    "TokenStore",
    "Usage",
    "Verdict",
    "check_url_security",
    "classify",
    "path_segment",
    "platform_message",
]
