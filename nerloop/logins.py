"""Failed logins, counted per client address, lock that address out for a while.

Both ways in (the login page and ``POST /api/v1/auth/token``) authenticate through Django,
which sends ``user_login_failed`` for every wrong password; the count lives in the cache that
every web process shares (Redis when the platform has one, files under the data folder
otherwise). Once an address has failed ``NERLOOP_LOGIN_FAILURES`` times within
``NERLOOP_LOGIN_LOCKOUT_SECONDS``, every attempt from it is refused, a right password
included, until that window ends. A success does not reset the count: an attacker who holds
one account cannot use it to keep guessing another.
"""

from __future__ import annotations

import math
import time

from django.conf import settings
from django.core.cache import cache


def _client(request) -> str:
    return request.META.get("REMOTE_ADDR") or "unknown"


def _keys(request) -> tuple[str, str]:
    client = _client(request)
    return f"login-failures:{client}", f"login-failures-since:{client}"


def record_failure(sender, credentials=None, request=None, **kwargs) -> None:
    """The ``user_login_failed`` receiver."""
    if request is None:  # a management command or a test calling authenticate() directly
        return
    count_key, since_key = _keys(request)
    window = settings.LOGIN_LOCKOUT_SECONDS
    cache.add(since_key, time.time(), window)
    cache.add(count_key, 0, window)
    try:
        cache.incr(count_key)
    except ValueError:  # expired between add and incr: this failure starts a new window
        cache.set(since_key, time.time(), window)
        cache.set(count_key, 1, window)


def seconds_locked(request) -> int:
    """How long this client must wait before it may try again; 0 when it may now."""
    count_key, since_key = _keys(request)
    if (cache.get(count_key) or 0) < settings.LOGIN_FAILURES:
        return 0
    since = cache.get(since_key) or time.time()
    return max(1, math.ceil(since + settings.LOGIN_LOCKOUT_SECONDS - time.time()))


def connect() -> None:
    from django.contrib.auth.signals import user_login_failed

    user_login_failed.connect(record_failure, dispatch_uid="nerloop.logins.record_failure")
