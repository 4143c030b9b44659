"""The auth and user-administration API, with the JSON keys of the original contract."""

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services
from accounts.models import User
from accounts.permissions import Allowed
from accounts.roles import Role
from accounts.selectors import user_get_for, user_list_for
from accounts.throttles import (
    LoginAddressThrottle,
    LoginEmailThrottle,
    PasswordResetAddressThrottle,
    PasswordResetEmailThrottle,
)
from accounts.tokens import TokenPair
from config.errors import DomainError
from config.pagination import PagePagination
from providers.models import Provider
from providers.selectors import provider_get_for

ERRORS = {
    400: OpenApiResponse(description="Invalid input: `detail`, `code`, `fields`."),
    401: OpenApiResponse(description="Not signed in, or the session ended."),
    403: OpenApiResponse(description="The current role may not do this."),
    404: OpenApiResponse(description="No such object for this caller."),
}


class SessionOutput(serializers.Serializer):
    token = serializers.CharField(allow_null=True, help_text="Access token; null until a role is chosen.")
    refreshToken = serializers.CharField(allow_null=True)
    userId = serializers.IntegerField()
    name = serializers.CharField()
    email = serializers.EmailField()
    providerId = serializers.IntegerField(allow_null=True)
    roles = serializers.ListField(child=serializers.ChoiceField(choices=Role.choices))
    selectedRole = serializers.ChoiceField(choices=Role.choices, allow_null=True)
    requiresRoleSelection = serializers.BooleanField()
    selectionTicket = serializers.CharField(
        required=False, help_text="Send it to /api/auth/select-role; valid once, for a few minutes."
    )
    selectionTicketExpiresAt = serializers.DateTimeField(required=False)


def session_body(user: User, *, selected_role: str | None, tokens: TokenPair | None) -> dict:
    return {
        "token": tokens.access if tokens else None,
        "refreshToken": tokens.refresh if tokens else None,
        "userId": user.pk,
        "name": user.name,
        "email": user.email,
        "providerId": user.provider_id,
        "roles": user.role_names,
        "selectedRole": selected_role,
        "requiresRoleSelection": tokens is None,
    }


class LoginApi(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginAddressThrottle, LoginEmailThrottle]

    class LoginInput(serializers.Serializer):
        email = serializers.EmailField()
        password = serializers.CharField(max_length=256, trim_whitespace=False)

    @extend_schema(
        request=LoginInput,
        responses={
            200: SessionOutput,
            401: ERRORS[401],
            429: OpenApiResponse(description="Too many attempts."),
        },
        summary="Sign in; a user with several roles gets a ticket to choose one",
    )
    def post(self, request: Request) -> Response:
        data = self.LoginInput(data=request.data)
        data.is_valid(raise_exception=True)
        outcome = services.login_start(**data.validated_data, request=request._request)
        body = session_body(outcome.user, selected_role=outcome.selected_role, tokens=outcome.tokens)
        if outcome.ticket:
            body |= {"selectionTicket": outcome.ticket, "selectionTicketExpiresAt": outcome.ticket_expires_at}
        return Response(SessionOutput(body).data)


class SelectRoleApi(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]

    class SelectRoleInput(serializers.Serializer):
        selectionTicket = serializers.CharField(max_length=100)
        selectedRole = serializers.ChoiceField(choices=Role.choices)
        userId = serializers.IntegerField(required=False, help_text="Optional; must match the ticket's user.")

    @extend_schema(
        request=SelectRoleInput, responses={200: SessionOutput, **ERRORS}, summary="Choose the role"
    )
    def post(self, request: Request) -> Response:
        data = self.SelectRoleInput(data=request.data)
        data.is_valid(raise_exception=True)
        user, tokens = services.role_select(
            ticket=data.validated_data["selectionTicket"],
            role=data.validated_data["selectedRole"],
            user_id=data.validated_data.get("userId"),
        )
        body = session_body(user, selected_role=data.validated_data["selectedRole"], tokens=tokens)
        return Response(SessionOutput(body).data)


class SwitchRoleApi(APIView):
    class SwitchRoleInput(serializers.Serializer):
        newRole = serializers.ChoiceField(choices=Role.choices)

    @extend_schema(
        request=SwitchRoleInput,
        responses={200: SessionOutput, **ERRORS},
        summary="Switch to another held role",
    )
    def post(self, request: Request) -> Response:
        data = self.SwitchRoleInput(data=request.data)
        data.is_valid(raise_exception=True)
        new_role = data.validated_data["newRole"]
        tokens = services.role_switch(user=request.user, from_role=request.user.active_role, to_role=new_role)
        return Response(SessionOutput(session_body(request.user, selected_role=new_role, tokens=tokens)).data)


class RefreshInput(serializers.Serializer):
    refreshToken = serializers.CharField(max_length=2000)


class RefreshApi(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        request=RefreshInput,
        responses={200: SessionOutput, 401: ERRORS[401]},
        summary="New tokens for a refresh token (which is then revoked)",
    )
    def post(self, request: Request) -> Response:
        data = RefreshInput(data=request.data)
        data.is_valid(raise_exception=True)
        user, role, tokens = services.tokens_refresh(refresh=data.validated_data["refreshToken"])
        return Response(SessionOutput(session_body(user, selected_role=role, tokens=tokens)).data)


class LogoutApi(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(request=RefreshInput, responses={204: None}, summary="Sign out: revoke the refresh token")
    def post(self, request: Request) -> Response:
        data = RefreshInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.tokens_revoke(refresh=data.validated_data["refreshToken"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeApi(APIView):
    @extend_schema(
        responses={
            200: inline_serializer(
                "Me",
                {
                    "userId": serializers.IntegerField(),
                    "name": serializers.CharField(),
                    "email": serializers.EmailField(),
                    "providerId": serializers.IntegerField(allow_null=True),
                    "roles": serializers.ListField(child=serializers.CharField()),
                    "selectedRole": serializers.CharField(),
                },
            )
        },
        summary="Who is signed in, and in which role",
    )
    def get(self, request: Request) -> Response:
        user = request.user
        return Response(
            {
                "userId": user.pk,
                "name": user.name,
                "email": user.email,
                "providerId": user.provider_id,
                "roles": user.role_names,
                "selectedRole": user.active_role,
            }
        )


RESET_ANSWER = gettext_lazy(
    "If an account uses this address, an e-mail with a link to set a new password is on its way."
)


class PasswordResetApi(APIView):
    """ "Forgot password": the same answer whatever the address, so it tells nobody who has an account."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [PasswordResetAddressThrottle, PasswordResetEmailThrottle]

    class PasswordResetInput(serializers.Serializer):
        email = serializers.EmailField()

    @extend_schema(
        request=PasswordResetInput,
        responses={
            202: inline_serializer("PasswordResetAccepted", {"detail": serializers.CharField()}),
            429: OpenApiResponse(description="Too many requests, from this address or for this e-mail."),
        },
        summary="E-mail a link to set a new password (the answer is the same for every address)",
    )
    def post(self, request: Request) -> Response:
        data = self.PasswordResetInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.password_reset_request(email=data.validated_data["email"])
        return Response({"detail": str(RESET_ANSWER)}, status=status.HTTP_202_ACCEPTED)


class PasswordResetConfirmApi(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [PasswordResetAddressThrottle]

    class PasswordResetConfirmInput(serializers.Serializer):
        uid = serializers.CharField(
            max_length=40, help_text="From the e-mailed link: /set-password/<uid>/<token>."
        )
        token = serializers.CharField(max_length=100)
        password = serializers.CharField(max_length=128, trim_whitespace=False)

    @extend_schema(
        request=PasswordResetConfirmInput,
        responses={204: None, 400: ERRORS[400], 429: OpenApiResponse(description="Too many attempts.")},
        summary="Set a password with the link of an invitation or password reset e-mail (once)",
    )
    def post(self, request: Request) -> Response:
        data = self.PasswordResetConfirmInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        services.password_set_with_token(
            uidb64=values["uid"], token=values["token"], password=values["password"]
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class UserOutput(serializers.Serializer):
    userId = serializers.IntegerField(source="pk")
    name = serializers.CharField()
    email = serializers.EmailField()
    phoneNumber = serializers.CharField(source="phone")
    address = serializers.CharField()
    designation = serializers.CharField()
    providerId = serializers.IntegerField(source="provider_id", allow_null=True)
    roles = serializers.ListField(source="role_names", child=serializers.CharField())
    isActive = serializers.BooleanField(source="is_active")
    createdAt = serializers.DateTimeField(source="created_at")


class AdminUserListCreateApi(APIView):
    class UserCreateInput(serializers.Serializer):
        name = serializers.CharField(max_length=150)
        email = serializers.EmailField()
        password = serializers.CharField(
            required=False,
            max_length=256,
            trim_whitespace=False,
            help_text="Omit for a user who never signs in.",
        )
        phoneNumber = serializers.CharField(required=False, allow_blank=True, max_length=30, default="")
        address = serializers.CharField(required=False, allow_blank=True, max_length=300, default="")
        designation = serializers.CharField(required=False, allow_blank=True, max_length=100, default="")
        roles = serializers.ListField(
            child=serializers.ChoiceField(choices=Role.choices), required=False, default=list, max_length=5
        )
        providerId = serializers.IntegerField(
            required=False,
            help_text="Platform administrators only; others create users of their own provider.",
        )

    pagination_class = PagePagination  # the schema documents the page, as for the generic list views

    def get_permissions(self) -> list:
        perm = "accounts.add_user" if self.request.method == "POST" else "accounts.view_user"
        return [Allowed.to(perm)()]

    @extend_schema(responses={200: UserOutput(many=True)}, summary="Users the caller administers")
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(user_list_for(user=request.user), request, view=self)
        return paginator.get_paginated_response(UserOutput(page, many=True).data)

    @extend_schema(
        request=UserCreateInput,
        responses={
            201: UserOutput,
            **ERRORS,
            409: OpenApiResponse(description="The e-mail address is taken."),
        },
        summary="Create a user",
    )
    def post(self, request: Request) -> Response:
        data = self.UserCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        user = services.user_create(
            email=values["email"],
            name=values["name"],
            password=values.get("password"),
            phone=values["phoneNumber"],
            address=values["address"],
            designation=values["designation"],
            roles=values["roles"],
            provider=_provider_for_new_user(request.user, values.get("providerId")),
            created_by=request.user,
        )
        return Response(UserOutput(user).data, status=status.HTTP_201_CREATED)


def _provider_for_new_user(caller: User, provider_id: int | None) -> Provider | None:
    """The caller's own provider unless they name one they can see: another provider's id is a 404."""
    if provider_id is None:
        return caller.provider
    return provider_get_for(user=caller, provider_id=provider_id)


class AdminUserDetailApi(APIView):
    class UserUpdateInput(serializers.Serializer):
        name = serializers.CharField(max_length=150, required=False)
        phoneNumber = serializers.CharField(max_length=30, required=False, allow_blank=True, source="phone")
        address = serializers.CharField(max_length=300, required=False, allow_blank=True)
        designation = serializers.CharField(max_length=100, required=False, allow_blank=True)
        isActive = serializers.BooleanField(required=False, source="is_active")

    def get_permissions(self) -> list:
        perm = "accounts.view_user" if self.request.method == "GET" else "accounts.change_user"
        return [Allowed.to(perm)()]

    @extend_schema(responses={200: UserOutput, **ERRORS}, summary="One user")
    def get(self, request: Request, user_id: int) -> Response:
        return Response(UserOutput(user_get_for(user=request.user, user_id=user_id)).data)

    @extend_schema(
        request=UserUpdateInput,
        responses={200: UserOutput, **ERRORS},
        summary="Edit a user; isActive=false signs them out everywhere at their next request",
    )
    def patch(self, request: Request, user_id: int) -> Response:
        user = user_get_for(user=request.user, user_id=user_id)
        data = self.UserUpdateInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        user = services.user_update(user=user, updated_by=request.user, **data.validated_data)
        return Response(UserOutput(user_get_for(user=request.user, user_id=user.pk)).data)


class AdminUserRoleAssignApi(APIView):
    permission_classes = [Allowed.to("accounts.change_user")]

    class RoleAssignInput(serializers.Serializer):
        userId = serializers.IntegerField()
        role = serializers.ChoiceField(choices=Role.choices)

    @extend_schema(
        request=RoleAssignInput,
        responses={
            201: inline_serializer(
                "UserRoles",
                {
                    "userId": serializers.IntegerField(),
                    "roles": serializers.ListField(child=serializers.CharField()),
                },
            ),
            200: OpenApiResponse(description="The user already held the role; nothing changed."),
            **ERRORS,
        },
        summary="Give a user a role",
    )
    def post(self, request: Request) -> Response:
        data = self.RoleAssignInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = user_get_for(user=request.user, user_id=data.validated_data["userId"])
        added = services.user_role_assign(
            user=user, role=data.validated_data["role"], assigned_by=request.user
        )
        user = user_get_for(user=request.user, user_id=user.pk)
        return Response(
            {"userId": user.pk, "roles": user.role_names},
            status=status.HTTP_201_CREATED if added else status.HTTP_200_OK,
        )


class AdminUserRolesApi(APIView):
    permission_classes = [Allowed.to("accounts.view_userrole")]

    @extend_schema(
        responses={200: OpenApiResponse(response={"type": "array", "items": {"type": "string"}}), **ERRORS},
        summary="The roles a user holds",
    )
    def get(self, request: Request, user_id: int) -> Response:
        return Response(user_get_for(user=request.user, user_id=user_id).role_names)


class AdminUserRoleRemoveApi(APIView):
    permission_classes = [Allowed.to("accounts.change_user")]

    @extend_schema(
        responses={
            200: OpenApiResponse(description="The roles the user still holds."),
            409: ERRORS[400],
            **ERRORS,
        },
        summary="Take a role away (never the last one)",
    )
    def delete(self, request: Request, user_id: int, role: str) -> Response:
        if role not in Role.values:
            raise DomainError(
                _("Unknown role %(unknown)s. Roles are: %(roles)s.")
                % {"unknown": role, "roles": ", ".join(Role.values)},
                field="role",
            )
        user = user_get_for(user=request.user, user_id=user_id)
        services.user_role_remove(user=user, role=role, removed_by=request.user)
        user = user_get_for(user=request.user, user_id=user_id)
        return Response({"userId": user.pk, "roles": user.role_names})
