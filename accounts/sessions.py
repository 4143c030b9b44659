"""The role a page session acts in: chosen after signing in, kept in the session, re-checked on every
request against the roles the user holds now (as a token's role is)."""

from django.http import HttpRequest

from accounts.roles import Role

SESSION_ROLE_KEY = "role"


def held_roles(request: HttpRequest) -> list[str]:
    """The roles the signed-in user holds now (one query a request)."""
    if not hasattr(request, "_held_roles"):
        user = request.user
        request._held_roles = user.role_names if user.is_authenticated else []
    return request._held_roles


def session_role(request: HttpRequest) -> Role | None:
    """The role this session acts in, if the user still holds it; a revoked role is forgotten."""
    if not hasattr(request, "_session_role"):
        role = request.session.get(SESSION_ROLE_KEY)
        if role not in held_roles(request):
            request.session.pop(SESSION_ROLE_KEY, None)
            role = None
        request._session_role = Role(role) if role else None
    return request._session_role
