"""Login rate limiting: after too many failed log-ins for one username or from one client address within a
window, further attempts are refused with HTTP 429 before the password is even checked.

Counts live in Django's cache framework, in the cache named by ``EVALSITE_LOGIN_RATELIMIT_CACHE`` (a
``DatabaseCache`` in the settings), never in Redis: log-in must keep working when the job queues are down,
and every gunicorn worker must see the same counts. The cache table is made by
``manage.py createcachetable`` (Django's test runner makes it for the test database); if it is missing
the first log-in makes it.

Settings (all optional): ``EVALSITE_LOGIN_MAX_FAILURES_PER_USER`` (default 5),
``EVALSITE_LOGIN_MAX_FAILURES_PER_IP`` (default 20), ``EVALSITE_LOGIN_WINDOW_SECONDS`` (default 900 s),
``EVALSITE_TRUSTED_PROXY_COUNT`` (default 0: the client is ``REMOTE_ADDR``; n > 0: the n-th address from the
right of ``X-Forwarded-For``, as set by n trusted proxies in front of the site).
"""
from __future__ import annotations

import hashlib
import logging
import math
import time
from functools import wraps

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.core.cache import caches
from django.core.management import call_command
from django.db import DatabaseError
from django.shortcuts import render

from evalsite.accounts import username_key

log = logging.getLogger(__name__)

DEFAULT_MAX_PER_USER = 5
DEFAULT_MAX_PER_IP = 20
DEFAULT_WINDOW_S = 900


def _setting(name: str, default):
    return getattr(settings, name, default)


def _cache():
    return caches[_setting("EVALSITE_LOGIN_RATELIMIT_CACHE", "default")]


def client_ip(request) -> str:
    """The client's address: ``REMOTE_ADDR``, or the address the trusted proxies saw (X-Forwarded-For)."""
    proxies = int(_setting("EVALSITE_TRUSTED_PROXY_COUNT", 0))
    if proxies > 0:
        forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
        if len(forwarded) >= proxies:
            # addresses left of those the trusted proxies appended are written by the client: not trusted
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _keys(request, username: str) -> dict[str, tuple[str, int]]:
    """Cache key and limit per counter. Usernames are counted by their comparison form (every spelling of
    one name shares a counter) and hashed so the cache never holds them in clear."""
    user_digest = hashlib.sha256(username_key(username).encode()).hexdigest()[:32]
    ip_digest = hashlib.sha256(client_ip(request).encode()).hexdigest()[:32]
    return {
        "username": (f"login-fail:user:{user_digest}",
                     int(_setting("EVALSITE_LOGIN_MAX_FAILURES_PER_USER", DEFAULT_MAX_PER_USER))),
        "address": (f"login-fail:ip:{ip_digest}",
                    int(_setting("EVALSITE_LOGIN_MAX_FAILURES_PER_IP", DEFAULT_MAX_PER_IP))),
    }


def _with_table(action):
    """Run a cache action; a missing cache table (``createcachetable`` not run yet) is made once."""
    try:
        return action()
    except DatabaseError:
        log.warning("login rate-limit cache failed; running createcachetable and retrying", exc_info=True)
        call_command("createcachetable", verbosity=0)
        return action()


def _live_count(entry, now: float) -> int:
    """Failures in an entry ``(count, window end as epoch s)``; 0 once its window is over."""
    if not entry:
        return 0
    count, ends = entry
    return count if ends > now else 0


def blocked_by(request, username: str, counters=("username", "address")) -> str | None:
    """Which of ``counters`` ("username", "address") has reached its limit, or None."""
    keys = {what: k for what, k in _keys(request, username).items() if what in counters}
    entries = _with_table(lambda: _cache().get_many([k for k, _ in keys.values()]))
    now = time.time()
    for what, (key, limit) in keys.items():
        if _live_count(entries.get(key), now) >= limit:
            return what
    return None


def record_failure(request, username: str, counters=("username", "address")) -> None:
    """Count one failed log-in against the username and the client address (or only the ``counters``
    named: a refused sign-up counts against the address alone). The window starts at the first
    failure and is not extended by later ones (the window end is stored with the count, because the
    cache's own incr() would reset the expiry). Concurrent failures may lose a count: a limit of N then
    holds within a few attempts, which is the point."""
    window = int(_setting("EVALSITE_LOGIN_WINDOW_SECONDS", DEFAULT_WINDOW_S))

    def bump():
        cache, now = _cache(), time.time()
        for what, (key, _) in _keys(request, username).items():
            if what not in counters:
                continue
            entry = cache.get(key)
            count = _live_count(entry, now)
            ends = entry[1] if count else now + window
            cache.set(key, (count + 1, ends), timeout=max(1, math.ceil(ends - now)))

    _with_table(bump)


def record_success(request, username: str) -> None:
    """A correct password clears the username's count (not the address's: one success must not reset a
    guessing run over many usernames)."""
    key, _ = _keys(request, username)["username"]
    _with_table(lambda: _cache().delete(key))


def too_many_response(request, what: str):
    minutes = math.ceil(int(_setting("EVALSITE_LOGIN_WINDOW_SECONDS", DEFAULT_WINDOW_S)) / 60)
    subject = "for this username" if what == "username" else "from your network address"
    message = (f"Too many failed log-in attempts {subject}. Log-in is paused; try again in about {minutes} "
               "minutes, or ask the study's organisers to reset your password.")
    response = render(request, "ratings/message.html", {"title": "Too many log-in attempts", "message": message},
                      status=429)
    response["Retry-After"] = str(minutes * 60)
    return response


def rate_limited_login(view):
    """Wrap any log-in view (``LoginView.as_view()``, ``admin.site.login``): refuse with 429 once a counter
    is full, count failed POSTs, clear the username's count on success."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if request.method != "POST":
            return view(request, *args, **kwargs)
        username = request.POST.get("username", "")
        what = blocked_by(request, username)
        if what is not None:
            log.warning("login refused (%s limit): %s", what, client_ip(request))
            return too_many_response(request, what)
        response = view(request, *args, **kwargs)
        # django.contrib.auth.login() sets request.user and the view redirects; checking the name as well
        # keeps a signed-in user from clearing someone else's count by posting that name
        user = getattr(request, "user", None)
        if (response.status_code in (301, 302) and user is not None and user.is_authenticated
                and username_key(user.get_username()) == username_key(username)):
            record_success(request, username)
        else:
            record_failure(request, username)
        return response

    return wrapped


class RateLimitedLoginView(auth_views.LoginView):
    """Django's LoginView with the rate limit of this module."""

    @classmethod
    def as_view(cls, **initkwargs):
        return rate_limited_login(super().as_view(**initkwargs))
