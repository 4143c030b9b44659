import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import User
from accounts.roles import Role
from providers.models import Authority, FixedCharge, Provider, TariffRow, TaxRule
from providers.services import TariffSpec, provider_price_set, schedule_row_add, tariff_change
from tests.factories import ConnectionTypeFactory, ProviderFactory, UserFactory

pytestmark = pytest.mark.django_db
D = Decimal
TARIFFS = "/admin/providers/tariffrow/"
CHANGE_PRICE = f"{TARIFFS}change-price/"
TAX_RULES = "/admin/providers/taxrule/"
ADD_TAX_RULE = f"{TAX_RULES}add/"


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def days_from_today(days: int) -> date:
    return timezone.localdate() + timedelta(days=days)


def hidden_inputs(html: str) -> dict[str, str]:
    """The hidden inputs of a page as a browser posts them (inline management forms and row ids)."""
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))


def tax_rule_form(authority: Authority, **fields: object) -> dict:
    return {
        "connection_type": "",
        "name": "GST",
        "authority": authority.pk,
        "rate": "0.17",
        "valid_from": timezone.localdate().isoformat(),
        "valid_to": "",
        "_save": "Save",
        **fields,
    }


@pytest.fixture
def provider_admin(admin_user):
    return admin_user


@pytest.fixture
def auditor(provider):
    return UserFactory(provider=provider, roles=[Role.AUDITOR], is_staff=True)


@pytest.fixture
def platform_admin(db):
    return UserFactory(provider=None, roles=[Role.ADMIN], is_superuser=True)


@pytest.fixture
def residential(provider):
    return ConnectionTypeFactory(provider=provider, code="R-5KW", description="Residential 5 kW")


@pytest.fixture
def fbr(provider):
    return Authority.objects.create(provider=provider, code="FBR", name="Federal Board of Revenue")


@pytest.fixture
def flat_price(provider, provider_admin):
    """20 per kWh from today, open."""
    return provider_price_set(
        provider=provider, price=D("20"), changed_by=provider_admin, valid_from=timezone.localdate()
    )


def open_rates(provider: Provider) -> list[tuple]:
    return list(TariffRow.objects.filter(provider=provider, valid_to=None).values_list("valid_from", "rate"))


# The provider's page


def test_provider_page_shows_its_connection_types_and_the_rates_in_force_today(
    provider_admin, provider, residential
):
    TariffRow.objects.create(
        provider=provider,
        connection_type=residential,
        code="OLD-RATE",
        rate=D("15"),
        valid_from=days_from_today(-60),
        valid_to=days_from_today(-30),
    )
    tariff_change(
        provider=provider,
        connection_type=residential,
        valid_from=days_from_today(-30),
        rows=[TariffSpec(rate=D("20"), code="NOW-RATE")],
        changed_by=provider_admin,
        today=days_from_today(-30),
    )
    tariff_change(
        provider=provider,
        connection_type=residential,
        valid_from=days_from_today(30),
        rows=[TariffSpec(rate=D("25"), code="NEXT-RATE")],
        changed_by=provider_admin,
    )

    response = signed_in(provider_admin).get(f"/admin/providers/provider/{provider.pk}/change/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "Residential 5 kW" in html
    assert "NOW-RATE" in html
    assert "OLD-RATE" not in html
    assert "NEXT-RATE" not in html
    assert 'name="tariff_rows-0-rate"' not in html  # shown, not editable
    assert 'name="connection_types-0-code"' not in html


def test_new_provider_page_has_no_schedule_yet(platform_admin):
    response = signed_in(platform_admin).get("/admin/providers/provider/add/")

    assert response.status_code == 200
    assert response.context["inline_admin_formsets"] == []


def test_provider_page_still_saves_the_provider_with_its_schedule_shown(
    provider_admin, provider, residential, flat_price
):
    client = signed_in(provider_admin)
    page = client.get(f"/admin/providers/provider/{provider.pk}/change/").content.decode()
    form = {
        **hidden_inputs(page),
        "name": "Renamed Electric",
        "city": provider.city,
        "email": provider.email,
        "phone": "",
        "is_active": "on",
        "currency": provider.currency,
        "due_days": provider.due_days,
        "late_surcharge_percent": provider.late_surcharge_percent,
        "reconnection_fee": provider.reconnection_fee,
        "_save": "Save",
    }

    response = client.post(f"/admin/providers/provider/{provider.pk}/change/", form)

    assert response.status_code == 302
    provider.refresh_from_db()
    assert provider.name == "Renamed Electric"
    flat_price.refresh_from_db()
    assert (flat_price.rate, flat_price.valid_to) == (D("20"), None)


# The tariff history


def test_provider_admin_sees_only_their_providers_tariff_rows(provider_admin, provider, other_provider):
    mine = ConnectionTypeFactory(provider=provider, description="Residential 5 kW")
    theirs = ConnectionTypeFactory(provider=other_provider, description="Zebra Industrial")
    for owner, connection_type, code in [
        (provider, mine, "MINE-FLAT"),
        (other_provider, theirs, "THEIRS-FLAT"),
    ]:
        tariff_change(
            provider=owner,
            connection_type=connection_type,
            valid_from=timezone.localdate(),
            rows=[TariffSpec(rate=D("20"), code=code)],
            changed_by=provider_admin,
        )

    response = signed_in(provider_admin).get(TARIFFS)

    assert response.status_code == 200
    html = response.content.decode()
    assert "MINE-FLAT" in html
    assert "THEIRS-FLAT" not in html
    assert "Residential 5 kW" in html  # the connection type filter offers the caller's types
    assert "Zebra Industrial" not in html


def test_platform_admin_sees_every_providers_tariff_rows(platform_admin, provider, other_provider):
    for owner, code in [(provider, "FIRST-FLAT"), (other_provider, "SECOND-FLAT")]:
        tariff_change(
            provider=owner,
            connection_type=None,
            valid_from=timezone.localdate(),
            rows=[TariffSpec(rate=D("20"), code=code)],
            changed_by=platform_admin,
        )

    html = signed_in(platform_admin).get(TARIFFS).content.decode()

    assert "FIRST-FLAT" in html
    assert "SECOND-FLAT" in html


def test_tariff_list_shows_the_connection_type_code_and_who_changed_the_row(
    provider_admin, provider, residential
):
    tariff_change(
        provider=provider,
        connection_type=residential,
        valid_from=timezone.localdate(),
        rows=[TariffSpec(rate=D("20"))],
        changed_by=provider_admin,
    )

    html = signed_in(provider_admin).get(TARIFFS).content.decode()

    assert '<td class="field-connection_type_code">R-5KW</td>' in html
    assert provider_admin.name in html


@pytest.mark.parametrize(
    ("in_force", "shown", "hidden"),
    [
        ("today", "NOW-RATE", ["OLD-RATE", "NEXT-RATE"]),
        ("ended", "OLD-RATE", ["NOW-RATE", "NEXT-RATE"]),
        ("scheduled", "NEXT-RATE", ["OLD-RATE", "NOW-RATE"]),
    ],
)
def test_tariff_list_filters_by_the_day_in_force(provider_admin, provider, in_force, shown, hidden):
    for code, start, end in [("OLD-RATE", -60, -30), ("NOW-RATE", -30, 30), ("NEXT-RATE", 30, None)]:
        TariffRow.objects.create(
            provider=provider,
            code=code,
            rate=D("20"),
            valid_from=days_from_today(start),
            valid_to=days_from_today(end) if end else None,
        )

    html = signed_in(provider_admin).get(TARIFFS, {"in_force": in_force}).content.decode()

    assert shown in html
    assert [code for code in hidden if code in html] == []


def test_tariff_row_page_is_read_only(provider_admin, flat_price):
    client = signed_in(provider_admin)
    url = f"{TARIFFS}{flat_price.pk}/change/"

    page = client.get(url)
    response = client.post(url, {"rate": "99", "valid_from": flat_price.valid_from.isoformat()})

    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert response.status_code == 403
    flat_price.refresh_from_db()
    assert flat_price.rate == D("20")


def test_tariff_rows_cannot_be_added_or_deleted_in_admin(provider_admin, flat_price):
    client = signed_in(provider_admin)

    added = client.post(f"{TARIFFS}add/", {"rate": "1", "valid_from": timezone.localdate().isoformat()})
    deleted = client.post(f"{TARIFFS}{flat_price.pk}/delete/", {"post": "yes"})

    assert (added.status_code, deleted.status_code) == (403, 403)
    assert list(TariffRow.objects.values_list("pk", flat=True)) == [flat_price.pk]


def test_tariff_list_queries_do_not_grow_with_its_rows(
    provider_admin, provider, django_assert_max_num_queries
):
    for number in range(20):
        person = UserFactory(provider=provider)
        TariffRow.objects.create(
            provider=provider,
            connection_type=ConnectionTypeFactory(provider=provider),
            code=f"ROW-{number}",
            rate=D("20"),
            valid_from=days_from_today(-60),
            valid_to=days_from_today(-30),
            created_by=person,
            closed_by=person,
        )
    client = signed_in(provider_admin)

    # About 45 whatever the rows (most check the caller's roles); loading each row's connection
    # type and users one by one would add 60.
    with django_assert_max_num_queries(50):
        response = client.get(TARIFFS)

    assert response.content.decode().count('class="field-connection_type_code"') == 20


# Changing the flat price


def test_tariff_list_links_to_change_prices_for_an_admin(provider_admin):
    html = signed_in(provider_admin).get(TARIFFS).content.decode()

    assert f'href="{CHANGE_PRICE}"' in html


def test_change_price_opens_the_new_flat_price_and_closes_the_old_one(provider_admin, provider, flat_price):
    start = days_from_today(30)

    response = signed_in(provider_admin).post(
        CHANGE_PRICE, {"price": "22.5", "valid_from": start.isoformat()}
    )

    assert response.status_code == 302
    assert response["Location"] == TARIFFS
    flat_price.refresh_from_db()
    assert (flat_price.valid_to, flat_price.closed_by) == (start, provider_admin)
    new = TariffRow.objects.get(provider=provider, valid_to=None)
    assert (new.rate, new.valid_from, new.connection_type, new.created_by) == (
        D("22.5"),
        start,
        None,
        provider_admin,
    )


@pytest.mark.parametrize(
    ("price", "days_ahead", "message"),
    [
        ("-1", 30, "rate must not be negative"),
        ("21", -1, "A price change cannot start in the past"),
    ],
    ids=["negative price", "past date"],
)
def test_change_price_shows_the_services_refusal_and_saves_nothing(
    provider_admin, provider, flat_price, price, days_ahead, message
):
    response = signed_in(provider_admin).post(
        CHANGE_PRICE, {"price": price, "valid_from": days_from_today(days_ahead).isoformat()}
    )

    assert response.status_code == 200
    assert message in response.content.decode()
    assert TariffRow.objects.filter(provider=provider).count() == 1
    assert open_rates(provider) == [(timezone.localdate(), D("20"))]


def test_change_price_form_offers_no_provider_choice_to_a_provider_admin(provider_admin):
    response = signed_in(provider_admin).get(CHANGE_PRICE)

    assert response.status_code == 200
    assert set(response.context["form"].fields) == {"price", "valid_from"}


def test_platform_admin_changes_the_price_of_an_active_provider_they_choose(
    platform_admin, provider, other_provider
):
    ProviderFactory(is_active=False, name="Closed Electric")
    client = signed_in(platform_admin)

    page = client.get(CHANGE_PRICE)
    response = client.post(
        CHANGE_PRICE,
        {"provider": other_provider.pk, "price": "18", "valid_from": timezone.localdate().isoformat()},
    )

    assert set(page.context["form"].fields["provider"].queryset) == {provider, other_provider}
    assert response.status_code == 302
    assert open_rates(other_provider) == [(timezone.localdate(), D("18"))]
    assert open_rates(provider) == []


def test_auditor_reads_the_tariff_history_without_a_change_prices_link(auditor, flat_price):
    response = signed_in(auditor).get(TARIFFS)

    assert response.status_code == 200
    html = response.content.decode()
    assert "20.0000" in html
    assert f'href="{CHANGE_PRICE}"' not in html


@pytest.mark.parametrize("method", ["get", "post"])
def test_auditor_cannot_change_prices(auditor, provider, flat_price, method):
    form = {"price": "30", "valid_from": days_from_today(30).isoformat()}

    response = getattr(signed_in(auditor), method)(CHANGE_PRICE, form)

    assert response.status_code == 403
    assert open_rates(provider) == [(timezone.localdate(), D("20"))]


# Taxes, fixed charges and subsidies


def test_tax_rule_add_form_offers_only_the_callers_types_and_authorities(
    provider_admin, residential, fbr, other_provider
):
    ConnectionTypeFactory(provider=other_provider)
    Authority.objects.create(provider=other_provider, code="PRA", name="Punjab Revenue Authority")

    response = signed_in(provider_admin).get(ADD_TAX_RULE)

    assert response.status_code == 200
    fields = response.context["adminform"].form.fields
    assert "provider" not in fields
    assert list(fields["connection_type"].queryset) == [residential]
    assert list(fields["authority"].queryset) == [fbr]


def test_adding_a_tax_rule_opens_it_for_the_admins_provider(provider_admin, provider, residential, fbr):
    response = signed_in(provider_admin).post(
        ADD_TAX_RULE, tax_rule_form(fbr, connection_type=residential.pk)
    )

    assert response.status_code == 302
    rule = TaxRule.objects.get()
    assert (rule.provider, rule.connection_type, rule.authority, rule.rate, rule.created_by) == (
        provider,
        residential,
        fbr,
        D("0.17"),
        provider_admin,
    )
    assert (rule.valid_from, rule.valid_to) == (timezone.localdate(), None)


def test_an_overlapping_tax_rule_is_refused_with_the_reason(provider_admin, provider, fbr):
    schedule_row_add(
        row=TaxRule(
            provider=provider, name="GST", authority=fbr, rate=D("0.17"), valid_from=days_from_today(-30)
        ),
        created_by=provider_admin,
        today=days_from_today(-30),  # entered a month ago
    )

    response = signed_in(provider_admin).post(ADD_TAX_RULE, tax_rule_form(fbr, rate="0.18"), follow=True)

    assert response.status_code == 200
    assert "The price schedule was not changed" in response.content.decode()
    assert "overlaps" in response.content.decode()
    assert list(TaxRule.objects.values_list("rate", flat=True)) == [D("0.17")]


def test_adding_a_fixed_charge_opens_it_for_the_admins_provider(provider_admin, provider, fbr):
    form = {
        "connection_type": "",
        "name": "Meter rent",
        "authority": fbr.pk,
        "amount": "25",
        "valid_from": timezone.localdate().isoformat(),
        "valid_to": "",
        "_save": "Save",
    }

    response = signed_in(provider_admin).post("/admin/providers/fixedcharge/add/", form)

    assert response.status_code == 302
    charge = FixedCharge.objects.get()
    assert (charge.provider, charge.name, charge.amount, charge.created_by) == (
        provider,
        "Meter rent",
        D("25"),
        provider_admin,
    )


def test_a_tax_rule_for_another_providers_authority_is_refused(provider_admin, other_provider):
    theirs = Authority.objects.create(provider=other_provider, code="PRA", name="Punjab Revenue Authority")

    response = signed_in(provider_admin).post(ADD_TAX_RULE, tax_rule_form(theirs))

    assert response.status_code == 200
    assert "authority" in response.context["adminform"].form.errors
    assert not TaxRule.objects.exists()


def test_platform_admin_cannot_mix_providers_in_a_tax_rule(platform_admin, provider, other_provider):
    theirs = Authority.objects.create(provider=other_provider, code="PRA", name="Punjab Revenue Authority")

    response = signed_in(platform_admin).post(ADD_TAX_RULE, tax_rule_form(theirs, provider=provider.pk))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["authority"] == [
        "Choose one of " + provider.code + "'s own."
    ]
    assert not TaxRule.objects.exists()


def test_tax_rule_page_is_read_only(provider_admin, provider, fbr):
    rule = schedule_row_add(
        row=TaxRule(
            provider=provider, name="GST", authority=fbr, rate=D("0.17"), valid_from=timezone.localdate()
        ),
        created_by=provider_admin,
    )
    client = signed_in(provider_admin)
    url = f"{TAX_RULES}{rule.pk}/change/"

    page = client.get(url)
    response = client.post(url, tax_rule_form(fbr, rate="0.5"))

    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert response.status_code == 403
    rule.refresh_from_db()
    assert rule.rate == D("0.17")


def test_auditor_reads_tax_rules_but_cannot_add_one(auditor, fbr):
    client = signed_in(auditor)

    listed = client.get(TAX_RULES)
    added = client.post(ADD_TAX_RULE, tax_rule_form(fbr))

    assert listed.status_code == 200
    assert added.status_code == 403
    assert not TaxRule.objects.exists()


@pytest.mark.parametrize(
    "path",
    [
        "/admin/providers/connectiontype/",
        "/admin/providers/authority/",
        "/admin/providers/fixedcharge/",
        "/admin/providers/subsidy/",
        "/admin/providers/fixedcharge/add/",
        "/admin/providers/subsidy/add/",
    ],
)
def test_schedule_pages_open_for_a_provider_admin(provider_admin, residential, fbr, path):
    response = signed_in(provider_admin).get(path)

    assert response.status_code == 200


@pytest.mark.parametrize("path", ["/admin/providers/connectiontype/add/", "/admin/providers/authority/add/"])
def test_connection_types_and_authorities_are_not_added_in_admin(provider_admin, path):
    response = signed_in(provider_admin).get(path)

    assert response.status_code == 403


def test_connection_type_list_shows_only_the_callers_types(provider_admin, residential, other_provider):
    ConnectionTypeFactory(provider=other_provider, description="Zebra Industrial")

    html = signed_in(provider_admin).get("/admin/providers/connectiontype/").content.decode()

    assert "Residential 5 kW" in html
    assert "Zebra Industrial" not in html
