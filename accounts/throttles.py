import hashlib

from django.http import HttpRequest
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import normalize_email


class _SettingsRateThrottle(SimpleRateThrottle):
    def get_rate(self) -> str:
        # Read when used, not at import, so a changed setting takes effect.
        return api_settings.DEFAULT_THROTTLE_RATES[self.scope]


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
