from django.urls import path

from accounts import api

urlpatterns = [
    path("auth/login", api.LoginApi.as_view(), name="auth-login"),
    path("auth/select-role", api.SelectRoleApi.as_view(), name="auth-select-role"),
    path("auth/switch-role", api.SwitchRoleApi.as_view(), name="auth-switch-role"),
    path("auth/refresh", api.RefreshApi.as_view(), name="auth-refresh"),
    path("auth/logout", api.LogoutApi.as_view(), name="auth-logout"),
    path("auth/me", api.MeApi.as_view(), name="auth-me"),
    path("auth/password-reset", api.PasswordResetApi.as_view(), name="auth-password-reset"),
    path(
        "auth/password-reset/confirm",
        api.PasswordResetConfirmApi.as_view(),
        name="auth-password-reset-confirm",
    ),
    path("admin/users", api.AdminUserListCreateApi.as_view(), name="admin-users"),
    path("admin/users/roles", api.AdminUserRoleAssignApi.as_view(), name="admin-user-role-assign"),
    path("admin/users/<int:user_id>", api.AdminUserDetailApi.as_view(), name="admin-user"),
    path("admin/users/<int:user_id>/roles", api.AdminUserRolesApi.as_view(), name="admin-user-roles"),
    path(
        "admin/users/<int:user_id>/roles/<str:role>",
        api.AdminUserRoleRemoveApi.as_view(),
        name="admin-user-role-remove",
    ),
]
