"""Glue for the server-rendered pages: the session's role, the `page` decorator, and form errors.

A page session acts in one role, as an API token does: chosen after signing in (or at once for a
single-role user), switched from the navigation bar, re-checked on every request. Pages read through
the same selectors and write through the same services as the API; a service's refusal
(`DomainError`) is shown next to the form field it names, with the form as it was submitted.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _

from accounts.permissions import PROVIDER, SELF, Reach, reach_of, role_allows
from accounts.roles import Role
from accounts.sessions import held_roles, session_role
from config import context
from config.errors import DomainError, NotFound


def safe_next(request: HttpRequest, fallback: str = "home") -> str:
    """Where to go after signing in: the page asked for, if it is on this site."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False):
        return target
    return reverse(fallback)


def page(perm: str | None = None, *, reach: Reach | None = None) -> Callable:
    """A page for a signed-in user acting in a role that holds `perm` (any role when None).

    `reach`: only roles with that reach, e.g. `PROVIDER` for a list of all the provider's invoices.
    Without a session: the sign-in page; without a chosen role: the role cards; a role that may not
    do this: 403. A `NotFound` from a selector or service is the 404 page, as for another provider.
    """

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            user = request.user
            if not user.is_authenticated:
                return redirect_to_login(request.get_full_path(), login_url=reverse("sign-in"))
            role = session_role(request)
            if role is None:
                return redirect(f"{reverse('choose-role')}?{urlencode({'next': request.get_full_path()})}")
            user.active_role = role
            context.bind(role=role)
            if perm and not allows(role, perm, reach, user=user):
                raise PermissionDenied
            try:
                return view(request, *args, **kwargs)
            except NotFound as exc:
                raise Http404(exc.detail) from exc

        return wrapper

    return decorator


def paginate(request: HttpRequest, rows: Any, per_page: int) -> Page:
    """The page of `rows` the request asks for (`?page=`); a page out of range gives the last one.
    Shown with `{% include "includes/pager.html" with page_obj=... %}`, which keeps the filters."""
    return Paginator(rows, per_page).get_page(request.GET.get("page"))


@contextmanager
def refusals_into(form: forms.Form, *, fields: dict[str, str] | None = None) -> Iterator[None]:
    """Show a service's refusal on the form: next to the field it names, or above the form.

    `fields` maps the API's field names (`billId`) to this form's where they differ."""
    try:
        yield
    except DomainError as exc:
        name = (fields or {}).get(exc.field or "", exc.field)
        form.add_error(name if name in form.fields else None, exc.detail)
        form.refusal = exc  # for form_page: a refusal that is not the input's fault keeps its status


def form_page(
    request: HttpRequest, template: str, values: dict[str, Any], *, form: forms.Form
) -> HttpResponse:
    """A form's page: 200, or 400 showing its errors; a refusal that is no fault of the input keeps
    its own status (503 with Retry-After while the task queue is unreachable), so it reads as one."""
    refusal = getattr(form, "refusal", None)
    if refusal is None or refusal.status < 500:
        return render(request, template, values, status=400 if form.errors else 200)
    response = render(request, template, values, status=refusal.status)
    if refusal.retry_after is not None:
        response["Retry-After"] = str(refusal.retry_after)
    return response


def navigation(request: HttpRequest) -> dict[str, Any]:
    """Template context for the navigation bar: the acting role and the roles to switch to."""
    if (
        not getattr(request, "user", None)
        or not request.user.is_authenticated
        or request.path.startswith("/admin/")
    ):
        return {}
    role = session_role(request)
    sections = []
    for title, entries in NAV:
        urls = [
            (label, reverse(name))
            for label, name, perm, reach in entries
            if allows(role, perm, reach, user=request.user)
        ]
        links = [{"label": label, "url": url, "current": request.path == url} for label, url in urls]
        if links:
            sections.append({"title": title, "links": links})
    return {
        "nav_sections": sections,
        "acting_role": role,
        "acting_role_label": Role(role).label if role else "",
        "switch_roles": [(r, Role(r).label) for r in held_roles(request)]
        if len(held_roles(request)) > 1
        else [],
    }


# The navigation bar: (label, url name, permission, reach). An entry shows when the acting role holds
# the permission (with that reach, when one is named), so a role sees exactly the pages it may open.
NavEntry = tuple[str, str, str, Reach | None]
NAV: tuple[tuple[str, tuple[NavEntry, ...]], ...] = (
    (_("Billing"), (
        (_("Dashboard"), "dashboard", "billing.view_customer", None),
        (_("Find a bill"), "bill-search", "billing.view_customer", None),
        (_("Take a payment"), "payment-new", "invoicing.collect_payment", None),
        (_("Bank payment files"), "payment-file-list", "invoicing.view_paymentfile", None),
        (_("Adjust a bill"), "adjustment-new", "invoicing.add_adjustment", None),
        (_("New invoice"), "invoice-new", "invoicing.add_invoice", None),
        (_("My invoices"), "invoices-mine", "invoicing.add_invoice", None),
        (_("All invoices"), "invoices-all", "invoicing.view_invoice", PROVIDER),
        (_("Billing runs"), "run-list", "invoicing.view_billingrun", None),
        (_("The books"), "books", "invoicing.view_books", None),
        (_("E-mails"), "message-list", "accounts.view_message", None),
        (_("Meter exchanges"), "meter-exchanges", "billing.view_meterexchange", None),
        (_("Disconnection orders"), "disconnection-order-list", "invoicing.view_disconnectionorder", None),
        (_("Usage calculator"), "usage-calculator", "billing.view_customer", None),
    )),
    (_("Customers"), (
        (_("Customers"), "customer-list", "billing.view_customer", None),
        (_("New customer"), "customer-new", "billing.add_customer", None),
        (_("Import customers"), "customer-import", "billing.add_serviceconnection", None),
    )),
    (_("Audit"), (
        (_("Audit log"), "audit-log", "auditing.view_auditlog", None),
        (_("Ask a question"), "ai-query", "auditing.add_aiquery", None),
        (_("Pricing history"), "pricing-history", "auditing.view_auditlog", None),
    )),
    (_("Administration"), (
        (_("Users"), "manage-users", "accounts.view_user", None),
        (_("Providers and prices"), "manage-providers", "providers.change_provider", None),
    )),
    (_("My account"), (  # the customer's own section, in their language
        (_("My bills"), "portal-home", "invoicing.view_invoice", SELF),
        (_("My payments"), "portal-payments", "invoicing.view_payment", SELF),
        (_("My details and e-mails"), "portal-profile", "billing.change_own_customer", SELF),
        (_("Usage calculator"), "usage-calculator", "invoicing.view_invoice", SELF),
    )),
)  # fmt: skip


def allows(role: str | None, perm: str, reach: Reach | None, *, user: Any) -> bool:
    return role_allows(role, perm, user=user) and (reach is None or reach_of(role, perm) is reach)
