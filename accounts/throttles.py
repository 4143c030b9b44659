"""Sign-in limits, per client address and per account, counted in the shared cache (Redis).

Without the cache, sign-in goes on: the limits are counted in this process's memory meanwhile, and
a warning is logged. Refusing every sign-in would turn a cache outage into an outage of the whole
product (no cashier could take a payment), and one an attacker could cause; counting nothing would
leave password guessing unlimited. Counted per process, the limits still hold: with N server
processes an attacker gets at most N times the rate, for as long as the cache is down.
"""

import hashlib
import logging
import time

from django.core.cache import caches
from django.http import HttpRequest
from redis.exceptions import RedisError
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import normalize_email

logger = logging.getLogger(__name__)

FALLBACK_CACHE = "local"
WARN_EVERY_SECONDS = 60  # one warning a minute per process, not one per attempt of a guessing attack
_last_warning = -WARN_EVERY_SECONDS


class _SettingsRateThrottle(SimpleRateThrottle):
    def get_rate(self) -> str:
        # Read when used, not at import, so a changed setting takes effect.
        return api_settings.DEFAULT_THROTTLE_RATES[self.scope]

    def allow_request(self, request: Request | HttpRequest, view: object) -> bool:
        try:
            return super().allow_request(request, view)
        except RedisError as problem:
            _warn_cache_down(problem)
            self.cache = caches[FALLBACK_CACHE]
            return super().allow_request(request, view)


def _warn_cache_down(problem: RedisError) -> None:
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= WARN_EVERY_SECONDS:
        _last_warning = now
        logger.warning("sign-in limits counted in this process only, the cache is unreachable: %s", problem)


class LoginAddressThrottle(_SettingsRateThrottle):
    """Sign-in attempts per client address."""

    scope = "login"

    def get_cache_key(self, request: Request, view: object) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginEmailThrottle(_SettingsRateThrottle):
    """Sign-in attempts per account, whichever addresses they come from (password guessing)."""

    scope = "login_email"

    def get_cache_key(self, request: Request | HttpRequest, view: object) -> str | None:
        # The API's JSON body, or the sign-in page's form.
        data = request.data if isinstance(request, Request) else request.POST
        email = data.get("email") if hasattr(data, "get") else None
        if not isinstance(email, str) or not email:
            return None
        ident = hashlib.sha256(normalize_email(email).encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": ident}


class PasswordResetAddressThrottle(LoginAddressThrottle):
    """ "Forgot password" requests per client address: each may send an e-mail."""

    scope = "password_reset"


class PasswordResetEmailThrottle(LoginEmailThrottle):
    """ "Forgot password" requests per address asked about, whoever asks (no mailbox flooded with links).
    Counted alike for addresses with and without an account, so the limit tells nothing either."""

    scope = "password_reset_email"
