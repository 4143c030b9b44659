"""Every model in Django admin: its list loads for a provider's administrator and for the platform's,
in a bounded number of queries however many rows it shows, and another provider's rows are not there."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from tests.admin.conftest import MANY

pytestmark = pytest.mark.django_db

OUR_APPS = ("accounts", "providers", "billing", "invoicing", "auditing")

# Each list, with how many of the busy provider's rows it shows at least, and the path from a row to
# its provider (None: one list for every provider).
LISTS = [
    ("accounts.user", MANY, "provider"),
    ("accounts.userrole", MANY, "user__provider"),
    ("accounts.roleselectionticket", MANY, "user__provider"),
    ("accounts.message", MANY, "provider"),
    ("accounts.notificationsettings", 1, "provider"),
    ("providers.provider", 1, "pk"),
    ("providers.connectiontype", MANY, "provider"),
    ("providers.authority", MANY, "provider"),
    ("providers.tariffrow", MANY, "provider"),
    ("providers.taxrule", MANY, "provider"),
    ("providers.fixedcharge", MANY, "provider"),
    ("providers.subsidy", MANY, "provider"),
    ("billing.customer", MANY, "provider"),
    ("billing.serviceconnection", MANY, "provider"),
    ("billing.meterreading", MANY, "provider"),
    ("billing.numbercounter", 2, "provider"),
    ("billing.connectionevent", MANY, "provider"),
    ("billing.meterexchange", MANY, "provider"),
    ("billing.connectiontypechange", MANY, "provider"),
    ("invoicing.invoice", MANY, "provider"),
    ("invoicing.invoiceline", MANY, "invoice__provider"),
    ("invoicing.documentcounter", 3, "provider"),
    ("invoicing.paymentmethod", 1, None),
    ("invoicing.payment", MANY, "provider"),
    ("invoicing.paymentallocation", MANY, "payment__provider"),
    ("invoicing.paymentreversal", MANY, "provider"),
    ("invoicing.adjustment", MANY, "provider"),
    ("invoicing.creditnote", MANY, "provider"),
    ("invoicing.creditnoteline", MANY, "credit_note__provider"),
    ("invoicing.customercredit", MANY, "provider"),
    ("invoicing.creditentry", MANY, "provider"),
    ("invoicing.creditrefund", MANY, "provider"),
    ("invoicing.billingrun", 1, "provider"),
    ("invoicing.billingrunchunk", MANY, "run__provider"),
    ("invoicing.billingrunproblem", MANY, "run__provider"),
    ("invoicing.pendingcharge", MANY, "provider"),
    ("invoicing.dunninglevel", 2, "provider"),
    ("invoicing.dunningcase", MANY, "provider"),
    ("invoicing.dunningstep", MANY, "provider"),
    ("invoicing.disconnectionorder", 1, "provider"),
    ("providers.priceorder", 1, "provider"),
    ("invoicing.paymentplan", MANY, "provider"),
    ("invoicing.paymentinstalment", MANY, "provider"),
    ("invoicing.paymentfileformat", 1, "provider"),
    ("invoicing.paymentfile", 1, "provider"),
    ("invoicing.paymentfilerow", MANY, "file__provider"),
    ("auditing.auditlog", MANY, "provider"),
    ("auditing.chainhead", 1, "chain"),
    ("auditing.aiquery", MANY, "provider"),
]
SCOPED = [(label, path) for label, _, path in LISTS if path]
# A list's own queries (session, user, roles, counts, filters, the page): not one more per row.
MAX_QUERIES = 16


def changelist(label: str) -> str:
    return reverse(f"admin:{label.replace('.', '_')}_changelist")


def change_page(label: str, pk: int) -> str:
    return reverse(f"admin:{label.replace('.', '_')}_change", args=[pk])


def test_every_model_is_in_django_admin():
    ours = {
        model._meta.label_lower for label in OUR_APPS for model in apps.get_app_config(label).get_models()
    }
    registered = {model._meta.label_lower for model in admin.site._registry}

    assert ours <= registered
    assert {label for label, _, _ in LISTS} == ours


@pytest.mark.parametrize("signed_in", ["browser", "platform_browser"])
def test_the_admin_index_offers_every_list_to_a_providers_and_the_platforms_administrator(request, signed_in):
    index = request.getfixturevalue(signed_in).get(reverse("admin:index"))
    offered = {
        f"{app['app_label']}.{model['object_name'].lower()}"
        for app in index.context["app_list"]
        for model in app["models"]
    }

    assert {label for label, _, _ in LISTS} <= offered


@pytest.mark.parametrize("signed_in", ["browser", "platform_browser"])
def test_every_list_loads_in_a_bounded_number_of_queries(
    request, signed_in, busy_provider, foreign_rows, django_assert_max_num_queries
):
    client = request.getfixturevalue(signed_in)
    shown = {}
    for label, at_least, _ in LISTS:
        with django_assert_max_num_queries(MAX_QUERIES, info=label):
            response = client.get(changelist(label))
        shown[label] = (response.status_code, response.context["cl"].result_count >= at_least)

    assert shown == {label: (200, True) for label, _, _ in LISTS}


def test_another_providers_rows_are_neither_listed_nor_found(
    browser, platform_browser, busy_provider, foreign_rows
):
    found = {}
    for label, path in SCOPED:
        foreign = apps.get_model(label).objects.filter(**{path: foreign_rows.pk}).first()
        page = browser.get(changelist(label)).content.decode()
        found[label] = (
            foreign is not None,
            change_page(label, foreign.pk) in page,
            browser.get(change_page(label, foreign.pk)).status_code,
            platform_browser.get(change_page(label, foreign.pk)).status_code,
        )

    # Not found for the provider's administrator (admin answers "does not exist" with a redirect).
    assert found == {label: (True, False, 302, 200) for label, _ in SCOPED}


def test_every_list_answers_a_search_and_each_of_its_filters(browser, busy_provider):
    answers = {}
    for label, _, _ in LISTS:
        searched = browser.get(changelist(label), {"q": "1"})
        cl = searched.context["cl"]
        filtered = [
            changelist(label) + choice["query_string"]
            for spec in cl.filter_specs
            for choice in spec.choices(cl)
        ]
        answers[label] = {searched.status_code} | {browser.get(url).status_code for url in filtered}

    assert answers == {label: {200} for label, _, _ in LISTS}
