"""Failed logins lock an account out from the address they came from, for a while.

Both ways in (the login page and ``POST /api/v1/auth/token``) authenticate through Django,
which sends ``user_login_failed`` for every wrong password; the counts live in the cache that
every web process shares (Redis when the platform has one, files under the data folder
otherwise). Once an account has failed ``NERLOOP_LOGIN_FAILURES`` times from one address
within ``NERLOOP_LOGIN_LOCKOUT_SECONDS``, every attempt at it from there is refused, a right
password included, until that window ends; an address that fails five times as often (over
any accounts) is refused for every account, and an account that fails five times as often
(from any addresses) is refused from everywhere. So one person's typos behind a shared proxy
or NAT lock out that person, not the team; guessing many accounts from one place is stopped;
and so is guessing one account from many addresses (a botnet, or X-Forwarded-For made up by a
client that reaches the web server without going through the proxy). A success does not
reset a count.

The address is ``REMOTE_ADDR``, or behind ``NERLOOP_TRUSTED_PROXIES`` reverse proxies the
entry they appended to X-Forwarded-For (what the client sent itself is not trusted). When the
cache cannot be reached, failures are not counted and nobody is locked out: a broken Redis
must not keep the right password out. ``python manage.py unlock_logins`` ends a lockout.
"""

from __future__ import annotations

import logging
import math
import time

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

ADDRESS_FACTOR = 5  # an address is refused for every account at this many times the limit
ACCOUNT_FACTOR = 5  # an account is refused from every address at this many times the limit


def client_address(request) -> str:
    proxies = getattr(settings, "TRUSTED_PROXIES", 0)
    if proxies:
        hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        hops = [hop for hop in hops if hop]
        if len(hops) >= proxies:
            return hops[-proxies]
    return request.META.get("REMOTE_ADDR") or "unknown"


def _scopes(address: str | None, username) -> list[tuple[str, int]]:
    """(cache key stem, failures it takes) for the address, the account from it, and the
    account from anywhere (the parts that are given)."""
    limit = settings.LOGIN_FAILURES
    scopes = []
    if address:
        scopes.append((f"login-failures:{address}", limit * ADDRESS_FACTOR))
    if username:
        account = str(username).lower()
        if address:
            scopes.append((f"login-failures:{address}:{account}", limit))
        scopes.append((f"login-failures:account:{account}", limit * ACCOUNT_FACTOR))
    return scopes


def _count(stem: str, window: int) -> None:
    cache.add(f"{stem}:since", time.time(), window)
    cache.add(stem, 0, window)
    try:
        cache.incr(stem)
    except ValueError:  # expired between add and incr: this failure starts a new window
        cache.set(f"{stem}:since", time.time(), window)
        cache.set(stem, 1, window)


def record_failure(sender, credentials=None, request=None, **kwargs) -> None:
    """The ``user_login_failed`` receiver."""
    if request is None:  # a management command or a test calling authenticate() directly
        return
    username = (credentials or {}).get("username")
    try:
        for stem, _limit in _scopes(client_address(request), username):
            _count(stem, settings.LOGIN_LOCKOUT_SECONDS)
    except Exception as exc:  # noqa: BLE001 (any cache backend's connection error)
        logger.warning("failed login not counted: the cache cannot be reached (%s)", exc)


def seconds_locked(request, username=None) -> int:
    """How long this client must wait before it may try this account again; 0 when now."""
    wait = 0
    try:
        for stem, limit in _scopes(client_address(request), username):
            if (cache.get(stem) or 0) >= limit:
                since = cache.get(f"{stem}:since") or time.time()
                left = math.ceil(since + settings.LOGIN_LOCKOUT_SECONDS - time.time())
                wait = max(wait, left, 1)
    except Exception as exc:  # noqa: BLE001
        logger.warning("login lockout not checked: the cache cannot be reached (%s)", exc)
        return 0
    return wait


def unlock(address: str | None, username=None) -> None:
    """Forget the failures of ``address`` and of ``username`` from it; with no address, of
    ``username`` from anywhere; with no username, of the address alone."""
    for stem, _limit in _scopes(address, username):
        cache.delete_many([stem, f"{stem}:since"])


def connect() -> None:
    from django.contrib.auth.signals import user_login_failed

    user_login_failed.connect(record_failure, dispatch_uid="nerloop.logins.record_failure")
