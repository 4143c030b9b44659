"""Signing in and out of the pages, choosing the role to act in, the home page each role lands on, and
setting a password from an invitation or "forgot password" e-mail."""

from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from accounts import services
from accounts.permissions import SELF, reach_of
from accounts.roles import Role
from accounts.sessions import held_roles, session_role
from accounts.throttles import (
    LoginAddressThrottle,
    LoginEmailThrottle,
    PasswordResetAddressThrottle,
    PasswordResetEmailThrottle,
)
from accounts.web import page, refusals_into, safe_next

# What each role card says (the seed's role selection page: a card per role, an icon and a description).
# The icons are drawn in the page (templates/accounts/role_icon.html), so they need no font or network.
ROLE_CARDS = {
    Role.CUSTOMER: "See your bills, download them, check what you paid and estimate next month.",
    Role.INVOICE_CREATOR: "Issue invoices, take payments on them and correct the ones you created.",
    Role.SUPER_CREATOR: "Every invoice of the provider, payments, officer adjustments and billing runs.",
    Role.AUDITOR: "The audit trail, invoice histories, pricing history and questions in plain words.",
    Role.ADMIN: "Users and their roles, providers and prices, and everything staff can do.",
}


class SignInForm(forms.Form):
    email = forms.EmailField(
        max_length=254, label=_("Email"), widget=forms.EmailInput(attrs={"autocomplete": "username"})
    )
    password = forms.CharField(
        max_length=128,
        strip=False,
        label=_("Password"),
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


def sign_in(request: HttpRequest) -> HttpResponse:
    # After a password is set, the address to sign in with is filled in (`?email=`).
    form = SignInForm(request.POST or None, initial={"email": request.GET.get("email", "")})
    if request.method == "POST" and not _attempt_allowed(request):
        form.add_error(None, _("Too many sign-in attempts. Wait a minute, then try again."))
        return render(
            request, "accounts/sign_in.html", {"form": form, "next": safe_next(request)}, status=429
        )
    if request.method == "POST" and form.is_valid():
        with refusals_into(form):
            services.session_sign_in(request=request, **form.cleaned_data)
            if session_role(request) is None:
                return redirect(f"{reverse('choose-role')}?next={safe_next(request)}")
            return redirect(safe_next(request))
    return render(request, "accounts/sign_in.html", {"form": form, "next": request.GET.get("next", "")})


def _attempt_allowed(request: HttpRequest) -> bool:
    """The API's sign-in limits apply to the page too: per address and per account."""
    return all(
        throttle.allow_request(request, None) for throttle in (LoginAddressThrottle(), LoginEmailThrottle())
    )


def choose_role(request: HttpRequest) -> HttpResponse:
    """The role cards: after signing in with several roles, or to switch to another one."""
    if not request.user.is_authenticated:
        return redirect("sign-in")
    error = ""
    if request.method == "POST":
        role = request.POST.get("role", "")
        try:
            services.session_role_select(request=request, user=request.user, role=role)
        except services.RoleNotHeld as exc:
            error = exc.detail
        else:
            return redirect(safe_next(request))
    cards = [
        {"role": role, "label": Role(role).label, "text": ROLE_CARDS[role]} for role in held_roles(request)
    ]
    return render(
        request,
        "accounts/choose_role.html",
        {"cards": cards, "error": error, "next": safe_next(request), "current": session_role(request)},
        status=400 if error else 200,
    )


@require_POST
@page()
def switch_role(request: HttpRequest) -> HttpResponse:
    """The navigation bar's role switcher: the same session, acting in another role from now on."""
    try:
        services.session_role_select(request=request, user=request.user, role=request.POST.get("role", ""))
    except services.RoleNotHeld:
        return redirect("choose-role")
    return redirect("home")


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    logout(request)  # user_logged_out is recorded by the audit trail
    return redirect("sign-in")


def home(request: HttpRequest) -> HttpResponse:
    """The landing page; a signed-in person goes where their role starts its day."""
    if not request.user.is_authenticated:
        return render(request, "home.html")
    role = session_role(request)
    if role is None:
        return redirect("choose-role")
    if reach_of(role, "invoicing.view_invoice") is SELF:
        return redirect("portal-home")
    if request.user.provider_id is None:
        return redirect("manage-providers")
    return redirect("dashboard")


# --- a way in: forgot password, and setting a password from an e-mailed link ---------------------------


class ForgotPasswordForm(forms.Form):
    email = forms.EmailField(
        max_length=254, label=_("Email"), widget=forms.EmailInput(attrs={"autocomplete": "username"})
    )


def forgot_password(request: HttpRequest) -> HttpResponse:
    """The same answer whatever the address: whether an account uses it is never told."""
    form = ForgotPasswordForm(request.POST or None)
    if request.method == "POST":
        if not all(
            throttle.allow_request(request, None)
            for throttle in (PasswordResetAddressThrottle(), PasswordResetEmailThrottle())
        ):
            form.add_error(None, _("Too many requests for a new password. Wait a while, then try again."))
            return render(request, "accounts/forgot_password.html", {"form": form}, status=429)
        if form.is_valid():
            services.password_reset_request(email=form.cleaned_data["email"])
            return render(request, "accounts/forgot_password.html", {"sent_to": form.cleaned_data["email"]})
    return render(
        request, "accounts/forgot_password.html", {"form": form}, status=400 if form.errors else 200
    )


class SetPasswordForm(forms.Form):
    password = forms.CharField(
        label=_("New password"),
        strip=False,
        max_length=128,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_(
            "At least 10 characters; not only digits, not a common password, not like your name or e-mail."
        ),
    )
    password_again = forms.CharField(
        label=_("Confirm the password"),
        strip=False,
        max_length=128,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self) -> dict:
        values = super().clean()
        if values.get("password") and values.get("password_again") not in (None, values["password"]):
            self.add_error("password_again", _("The two passwords differ: type the same one twice."))
        return values


# The token is moved from the link's address into the session, then the address is replaced by one
# without it (as Django's own password reset does): the token never reaches a Referer header or a log.
SET_PASSWORD_SESSION_KEY = "_set_password_token"  # noqa: S105 (a session key, not a secret)
TOKEN_IN_SESSION = "set"  # noqa: S105 (the placeholder for the token in the address)


def set_password(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    if token != TOKEN_IN_SESSION:
        request.session[SET_PASSWORD_SESSION_KEY] = token
        return redirect("set-password", uidb64=uidb64, token=TOKEN_IN_SESSION)
    token = request.session.get(SET_PASSWORD_SESSION_KEY, "")
    try:
        user = services.password_reset_user(uidb64=uidb64, token=token)
    except services.LinkInvalid as exc:
        return render(request, "accounts/set_password.html", {"invalid": exc.detail}, status=400)
    form = SetPasswordForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with refusals_into(form):
            services.password_set_with_token(
                uidb64=uidb64, token=token, password=form.cleaned_data["password"]
            )
            del request.session[SET_PASSWORD_SESSION_KEY]
            messages.success(
                request, _("Your password is set. Sign in with your e-mail address and the new password.")
            )
            return redirect(f"{reverse('sign-in')}?{urlencode({'email': user.email})}")
    return render(
        request,
        "accounts/set_password.html",
        {"form": form, "account": user},
        status=400 if form.errors else 200,
    )
