from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import User
from accounts.roles import Role
from providers.models import Bucket, Provider, TariffRow
from providers.services import TariffSpec, tariff_change
from tests.factories import ConnectionTypeFactory, FlatTariffFactory, UserFactory

D = Decimal


@pytest.fixture
def admin(signed_in, admin_user):
    """The provider's administrator, acting as one."""
    return signed_in(admin_user, Role.ADMIN)


@pytest.fixture
def flat(provider):
    """The provider's one price: 32.50 per kWh for every connection and hour, since 2020."""
    return FlatTariffFactory(provider=provider, rate=D("32.50"))


@pytest.fixture
def platform_admin(signed_in, db):
    return signed_in(UserFactory(provider=None, roles=[Role.ADMIN]), Role.ADMIN)


def new_user(**fields):
    return {"name": "Hina Tariq", "email": "hina@disco.example", "phone": "", "address": "", **fields}


def test_a_user_created_with_two_roles_holds_both_and_the_list_shows_them(admin, provider):
    response = admin.post("/manage/users/new", new_user(roles=[Role.INVOICE_CREATOR, Role.AUDITOR]))

    user = User.objects.get(email="hina@disco.example")
    listing = admin.get("/manage/users").content.decode()
    row = listing.split(f'data-testid="user-row-{user.pk}"')[1].split("</tr>")[0]
    assert response.status_code == 302 and response.url == f"/manage/users/{user.pk}"
    assert user.role_names == [Role.INVOICE_CREATOR, Role.AUDITOR] and user.provider == provider
    assert "Invoice creator</span>" in row and "Auditor</span>" in row


def test_a_user_created_with_no_role_ticked_is_a_customer(admin):
    admin.post("/manage/users/new", new_user())

    assert User.objects.get(email="hina@disco.example").role_names == [Role.CUSTOMER]


def test_a_taken_email_is_refused_next_to_the_email_and_keeps_what_was_typed(admin, provider):
    UserFactory(provider=provider, email="hina@disco.example")

    response = admin.post("/manage/users/new", new_user(name="Hina T.", roles=[Role.AUDITOR]))

    html = response.content.decode()
    assert response.status_code == 400
    assert 'id="id_email_error"' in html and "An account with the email hina@disco.example already" in html
    assert 'value="Hina T."' in html
    assert f'value="{Role.AUDITOR}" id="id_roles_3" checked' in html


def test_a_weak_password_is_refused_next_to_the_password(admin):
    response = admin.post("/manage/users/new", new_user(password="123"))

    assert response.status_code == 400 and 'id="id_password_error"' in response.content.decode()
    assert not User.objects.filter(email="hina@disco.example").exists()


def test_a_provider_admin_creates_users_of_their_own_provider_whatever_is_posted(
    admin, provider, other_provider
):
    form = admin.get("/manage/users/new").content.decode()

    admin.post("/manage/users/new", new_user(provider=other_provider.pk))

    assert 'name="provider"' not in form
    assert User.objects.get(email="hina@disco.example").provider == provider


def test_a_platform_admin_chooses_the_provider_and_a_staff_role_needs_one(platform_admin, provider):
    refused = platform_admin.post("/manage/users/new", new_user(roles=[Role.AUDITOR]))
    platform_admin.post("/manage/users/new", new_user(roles=[Role.AUDITOR], provider=provider.pk))

    assert refused.status_code == 400
    assert 'id="id_provider_error"' in refused.content.decode()
    assert User.objects.get(email="hina@disco.example").provider == provider


def test_a_platform_admin_lists_every_providers_users_and_filters_by_provider(
    platform_admin, provider, other_provider
):
    ours = UserFactory(provider=provider, name="Ours Person")
    theirs = UserFactory(provider=other_provider, name="Theirs Person")

    everyone = platform_admin.get("/manage/users").content.decode()
    filtered = platform_admin.get(f"/manage/users?provider={other_provider.pk}").content.decode()

    assert "Ours Person" in everyone and "Theirs Person" in everyone and other_provider.name in everyone
    assert f"user-row-{theirs.pk}" in filtered and f"user-row-{ours.pk}" not in filtered


def test_the_user_list_searches_by_name_or_email_and_filters_by_role(admin, provider):
    UserFactory(provider=provider, name="Bilal Auditor", roles=[Role.AUDITOR])
    UserFactory(provider=provider, name="Bilal Customer")
    UserFactory(provider=provider, name="Someone Else", roles=[Role.AUDITOR])

    html = admin.get(f"/manage/users?q=bilal&role={Role.AUDITOR}").content.decode()

    assert "Bilal Auditor" in html and "Bilal Customer" not in html and "Someone Else" not in html


def test_another_providers_user_is_not_found(admin, other_provider):
    theirs = UserFactory(provider=other_provider, roles=[Role.INVOICE_CREATOR, Role.AUDITOR])

    shown = admin.get(f"/manage/users/{theirs.pk}")
    changed = admin.post(f"/manage/users/{theirs.pk}", {"part": "roles", "roles": [Role.AUDITOR]})

    assert shown.status_code == 404 and changed.status_code == 404
    assert theirs.role_names == [Role.INVOICE_CREATOR, Role.AUDITOR]


def test_removing_one_of_two_roles_keeps_the_other(admin, provider):
    user = UserFactory(provider=provider, roles=[Role.INVOICE_CREATOR, Role.AUDITOR])

    response = admin.post(f"/manage/users/{user.pk}", {"part": "roles", "roles": [Role.AUDITOR]})

    assert response.status_code == 302
    assert User.objects.get(pk=user.pk).role_names == [Role.AUDITOR]


def test_unticking_every_role_is_refused_next_to_the_roles(admin, provider):
    user = UserFactory(provider=provider, roles=[Role.INVOICE_CREATOR, Role.AUDITOR])

    response = admin.post(f"/manage/users/{user.pk}", {"part": "roles"})

    html = response.content.decode()
    assert response.status_code == 400
    assert 'id="id_roles_error"' in html and "A user must keep at least one role." in html
    assert User.objects.get(pk=user.pk).role_names == [Role.INVOICE_CREATOR, Role.AUDITOR]


def test_editing_a_users_details_saves_them(admin, provider):
    user = UserFactory(provider=provider, roles=[Role.SUPER_CREATOR])

    admin.post(
        f"/manage/users/{user.pk}",
        {"part": "details", "name": user.name, "designation": "Billing Officer", "is_active": "on"},
    )

    user.refresh_from_db()
    assert user.designation == "Billing Officer" and user.is_active


def test_an_admin_cannot_deactivate_themselves(admin, admin_user):
    response = admin.post(f"/manage/users/{admin_user.pk}", {"part": "details", "name": admin_user.name})

    assert response.status_code == 400
    assert "You cannot deactivate your own account." in response.content.decode()
    assert User.objects.get(pk=admin_user.pk).is_active


@pytest.mark.parametrize(
    "path",
    [
        "/manage/users",
        "/manage/users/new",
        "/manage/users/{user}",
        "/manage/providers",
        "/manage/providers/{provider}",
        "/manage/providers/{provider}/prices",
    ],
)
def test_an_auditor_may_not_open_the_administrators_pages(signed_in, provider, path):
    auditor = UserFactory(provider=provider, roles=[Role.AUDITOR])

    response = signed_in(auditor, Role.AUDITOR).get(path.format(user=auditor.pk, provider=provider.pk))

    assert response.status_code == 403


def test_a_price_change_opens_a_new_rate_shown_from_its_effective_date(admin, provider, flat):
    starts = timezone.localdate() + timedelta(days=10)
    prices = f"/manage/providers/{provider.pk}/prices"

    response = admin.post(prices, {"row": flat.pk, "rate": "35.25", "valid_from": starts.isoformat()})

    opened = TariffRow.objects.get(provider=provider, valid_from=starts)
    today = admin.get(prices).content.decode()
    from_then = admin.get(f"{prices}?on={starts.isoformat()}").content.decode()
    assert response.status_code == 302 and response.url == f"{prices}?on={starts.isoformat()}"
    assert (opened.rate, opened.created_by.role_names) == (D("35.25"), [Role.ADMIN])
    assert 'data-testid="tariff-rate">32.50<' in today
    assert f"<td>{starts - timedelta(days=1)}</td>" in today  # the old price's last day
    assert 'data-testid="tariff-rate">35.25<' in from_then and "32.50" not in from_then


def test_a_price_change_keeps_the_other_rates_of_the_connection_type(admin, provider, admin_user):
    residential = ConnectionTypeFactory(provider=provider, code="1")
    _, high = tariff_change(
        provider=provider,
        connection_type=residential,
        valid_from=timezone.localdate(),
        rows=[
            TariffSpec(bucket=Bucket.ALL, band_high=D("0.5"), rate=D("20"), slab=1, code="R-1"),
            TariffSpec(bucket=Bucket.ALL, band_low=D("0.5"), rate=D("30"), slab=2, code="R-2"),
        ],
        changed_by=admin_user,
    )
    starts = timezone.localdate() + timedelta(days=1)

    admin.post(
        f"/manage/providers/{provider.pk}/prices",
        {"row": high.pk, "rate": "33", "valid_from": starts.isoformat()},
    )

    opened = TariffRow.objects.filter(provider=provider, valid_from=starts).order_by("slab")
    assert [(row.code, row.band_low, row.band_high, row.rate) for row in opened] == [
        ("R-1", D("0"), D("0.5"), D("20")),
        ("R-2", D("0.5"), None, D("33")),
    ]


def test_a_negative_price_is_refused_next_to_the_price(admin, provider, flat):

    response = admin.post(
        f"/manage/providers/{provider.pk}/prices",
        {"row": flat.pk, "rate": "-1", "valid_from": timezone.localdate().isoformat()},
    )

    html = response.content.decode()
    assert response.status_code == 400
    assert 'id="id_rate_error"' in html and "A price cannot be negative." in html and 'value="-1"' in html
    assert TariffRow.objects.filter(provider=provider).count() == 1


def test_a_price_change_dated_in_the_past_is_refused_next_to_the_date(admin, provider, flat):

    response = admin.post(
        f"/manage/providers/{provider.pk}/prices",
        {"row": flat.pk, "rate": "35", "valid_from": (timezone.localdate() - timedelta(days=1)).isoformat()},
    )

    html = response.content.decode()
    assert response.status_code == 400
    assert 'id="id_valid_from_error"' in html and "A price change cannot start in the past" in html
    assert TariffRow.objects.filter(provider=provider).count() == 1


def provider_form(**fields):
    """The settings as the form posts them, with its defaults."""
    return {
        "currency": "PKR",
        "due_days": "10",
        "late_surcharge_percent": "10.00",
        "is_active": "on",
        **fields,
    }


def test_a_platform_admin_sees_every_provider_and_adds_one(platform_admin, provider, other_provider):
    listed = platform_admin.get("/manage/providers").content.decode()

    response = platform_admin.post(
        "/manage/providers",
        provider_form(
            code="nepco",
            name="Northern Electric",
            city="Multan",
            email="billing@nepco.example",
            currency="pkr",
            due_days="14",
            late_surcharge_percent="5",
            kwh_price="30",
        ),
    )

    added = Provider.objects.get(code="NEPCO")
    assert f"provider-row-{provider.code}" in listed and f"provider-row-{other_provider.code}" in listed
    assert response.status_code == 302 and response.url == f"/manage/providers/{added.pk}"
    assert (added.currency, added.due_days, added.late_surcharge_percent) == ("PKR", 14, D("5"))
    assert TariffRow.objects.get(provider=added).rate == D("30")


def test_a_taken_provider_code_is_refused_next_to_the_code(platform_admin, provider):
    response = platform_admin.post(
        "/manage/providers",
        provider_form(code=provider.code, name="Copy", city="Lahore", email="copy@example.com"),
    )

    html = response.content.decode()
    assert response.status_code == 400
    assert 'id="id_code_error"' in html and "already exists" in html and 'value="Copy"' in html


def test_a_provider_admin_sees_only_their_own_provider_and_cannot_add_one(admin, provider, other_provider):
    listed = admin.get("/manage/providers")

    html = listed.content.decode()
    assert f"provider-row-{provider.code}" in html and other_provider.code not in html
    assert "Add a provider" not in html
    assert admin.post("/manage/providers", {"code": "NEW"}).status_code == 403
    assert admin.get(f"/manage/providers/{other_provider.pk}").status_code == 404
    assert admin.get(f"/manage/providers/{other_provider.pk}/prices").status_code == 404


def test_a_provider_admin_changes_their_providers_settings(admin, provider):
    response = admin.post(
        f"/manage/providers/{provider.pk}",
        provider_form(
            name=provider.name,
            city=provider.city,
            email=provider.email,
            due_days="21",
            late_surcharge_percent="12.5",
        ),
    )

    provider.refresh_from_db()
    assert response.status_code == 302
    assert (provider.due_days, provider.late_surcharge_percent) == (21, D("12.5"))


def test_a_provider_admin_sets_the_reconnection_fee(admin, provider):
    response = admin.post(
        f"/manage/providers/{provider.pk}",
        provider_form(name=provider.name, city=provider.city, email=provider.email, reconnection_fee="750"),
    )

    provider.refresh_from_db()
    assert (response.status_code, provider.reconnection_fee) == (302, D("750.00"))


def test_days_to_pay_beyond_ninety_are_refused_next_to_the_field(admin, provider):
    response = admin.post(
        f"/manage/providers/{provider.pk}",
        provider_form(name=provider.name, city=provider.city, email=provider.email, due_days="120"),
    )

    assert response.status_code == 400 and 'id="id_due_days_error"' in response.content.decode()
    assert Provider.objects.get(pk=provider.pk).due_days == 10


def test_a_platform_admin_starts_on_the_providers(platform_admin):
    response = platform_admin.get("/")

    assert response.status_code == 302 and response.url == "/manage/providers"


def test_prices_page_offers_the_last_day_of_a_schedule_whose_rates_all_ended(signed_in, flat_provider):
    TariffRow.objects.filter(provider=flat_provider).update(valid_to=date(2025, 1, 1))
    admin = UserFactory(provider=flat_provider, roles=[Role.ADMIN])

    page = signed_in(admin, Role.ADMIN).get(f"/manage/providers/{flat_provider.pk}/prices").content.decode()

    assert "No rate is in force on this day." in page
    assert '<a href="?on=2024-12-31">31 December 2024</a>' in page
