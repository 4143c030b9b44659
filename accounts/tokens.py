"""JWTs that carry the selected role and the provider, on top of simplejwt's refresh tokens."""

from dataclasses import dataclass

from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User

ROLE_CLAIM = "role"
PROVIDER_CLAIM = "provider_id"


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str


def token_pair_for(*, user: User, role: str) -> TokenPair:
    """A refresh token (recorded as outstanding, so it can be revoked) and its access token."""
    refresh = RefreshToken.for_user(user)
    refresh[ROLE_CLAIM] = role
    refresh[PROVIDER_CLAIM] = user.provider_id
    return TokenPair(access=str(refresh.access_token), refresh=str(refresh))
