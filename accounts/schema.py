"""OpenAPI description of the two ways in: bearer tokens (Swagger UI's Authorize button) and the
pages' own session cookie, which their scripts use."""

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme


class RoleJWTScheme(SimpleJWTScheme):
    target_class = "accounts.authentication.RoleJWTAuthentication"
    name = "jwtAuth"


class SessionRoleScheme(SessionScheme):
    target_class = "accounts.authentication.SessionRoleAuthentication"
    name = "cookieAuth"
