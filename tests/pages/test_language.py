"""Which language a page is in (the user's choice, else the browser's) and how it writes money."""

from datetime import date
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation

from accounts.models import Language
from accounts.roles import Role
from invoicing.services import invoice_issue
from invoicing.templatetags.money import currency_symbol, money_in
from tests.factories import UserFactory

URDU_BROWSER = {"HTTP_ACCEPT_LANGUAGE": "ur,en;q=0.5"}
RUPEES = "پاکستانی روپیہ"


@pytest.mark.parametrize(
    ("language", "amount", "currency", "written"),
    [
        ("en", "9750.005", "PKR", "Rs9,750.01"),  # half-up, as bills round
        ("en", "-0.001", "PKR", "Rs0.00"),  # no "-0.00"
        ("en", "1234567.5", "USD", "US$1,234,567.50"),
        ("ur", "9750", "PKR", f"9,750.00 {RUPEES}"),
        ("ur", Decimal("29250.00"), "PKR", f"29,250.00 {RUPEES}"),
    ],
)
def test_money_is_written_for_the_language_in_the_providers_currency(language, amount, currency, written):
    with translation.override(language):
        assert money_in(amount, currency) == written


def test_a_tables_heading_names_the_currency_by_its_symbol():
    assert currency_symbol("PKR") == "Rs"


def test_a_customer_who_reads_urdu_gets_their_bill_in_urdu_right_to_left(signed_in, connection, creator):
    customer = connection.customer
    customer.preferred_language = Language.URDU
    customer.save()
    bill = invoice_issue(connection=connection, period=date(2024, 1, 1), created_by=creator)

    response = signed_in(customer.user, Role.CUSTOMER).get(reverse("portal-bill", args=[bill.pk]))

    html = response.content.decode()
    assert '<html lang="ur" dir="rtl">' in html
    assert response["Content-Language"] == "ur"
    assert "آخری تاریخ تک قابلِ ادائیگی" in html  # "Payable within due date"
    assert f'data-testid="payable-before">9,750.00 {RUPEES}<' in html
    assert "جنوری 2024" in html  # the billing month's Urdu name


def test_without_a_chosen_language_the_browsers_language_is_used(signed_in, flat_provider):
    staff = UserFactory(provider=flat_provider, roles=[Role.INVOICE_CREATOR])

    html = (
        signed_in(staff, Role.INVOICE_CREATOR)
        .get(reverse("home"), follow=True, **URDU_BROWSER)
        .content.decode()
    )

    assert '<html lang="ur" dir="rtl">' in html
    assert 'name="language"' in html  # the switch at the top decides


def test_a_language_chosen_on_the_profile_outranks_the_browsers(signed_in, flat_provider):
    staff = UserFactory(provider=flat_provider, roles=[Role.INVOICE_CREATOR], language=Language.ENGLISH)

    html = (
        signed_in(staff, Role.INVOICE_CREATOR)
        .get(reverse("home"), follow=True, **URDU_BROWSER)
        .content.decode()
    )

    assert '<html lang="en" dir="ltr">' in html
    assert 'name="language"' not in html  # no switch that would not take effect


def test_the_switch_at_the_top_changes_the_language_of_the_next_pages(db):
    client = Client()
    assert '<html lang="en" dir="ltr">' in client.get(reverse("sign-in")).content.decode()

    client.post(reverse("set_language"), {"language": "ur", "next": reverse("sign-in")})

    html = client.get(reverse("sign-in")).content.decode()
    assert '<html lang="ur" dir="rtl">' in html
    assert "سائن اِن" in html  # "Sign in"
