"""OpenAPI description of the bearer-token authentication, for Swagger UI's Authorize button."""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme


class RoleJWTScheme(SimpleJWTScheme):
    target_class = "accounts.authentication.RoleJWTAuthentication"
    name = "jwtAuth"
