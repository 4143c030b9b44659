"""Two providers with recognisable rows, and checks that an AI query's answer and the database
hold: the auditor's provider ALPHA, and BRAVO, whose rows must never come back.

Every BRAVO text contains "bravo" (numbers, names), and its figures are ones no ALPHA value or id
has (98765 kWh, 3209862.50 billed, 4321.09 paid): an answer carrying any of them leaked a BRAVO row.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection

from accounts.roles import Role
from auditing.ai.execute import QueryResult
from invoicing.models import Invoice, PaymentMethod
from invoicing.services import invoice_issue, payment_post
from providers.models import Provider
from tests.factories import (
    ConnectionFactory,
    CustomerFactory,
    FlatTariffFactory,
    ProviderFactory,
    ReadingFactory,
    UserFactory,
)

BRAVO_FIGURES = frozenset({Decimal("98765"), Decimal("3209862.50"), Decimal("4321.09")})


@dataclass
class Tenant:
    provider: Provider
    invoice: Invoice


def tenant(code: str, *, kwh: int, paid: Decimal) -> Tenant:
    """A provider charging 32.50 per kWh, with a customer, a connection billed for January 2024
    (`kwh` kWh), a payment of `paid`, and three staff users; every text names `code`."""
    label = code.capitalize()
    provider = ProviderFactory(code=code, name=f"{label} Power")
    FlatTariffFactory(provider=provider, rate=Decimal("32.50"))
    creator = UserFactory(provider=provider, roles=[Role.INVOICE_CREATOR], name=f"{label} creator")
    UserFactory(provider=provider, roles=[Role.AUDITOR], name=f"{label} auditor")
    customer = CustomerFactory(
        provider=provider,
        number=f"{code}-CUST-1",
        user=UserFactory(provider=provider, roles=[Role.CUSTOMER], name=f"{label} customer"),
    )
    connection_ = ConnectionFactory(customer=customer, provider=provider, number=f"{code}-CONN-1")
    zone = ZoneInfo(settings.TIME_ZONE)
    for taken, reading in (
        (datetime(2023, 12, 28, 9, tzinfo=zone), 0),
        (datetime(2024, 1, 28, 9, tzinfo=zone), kwh),
    ):
        ReadingFactory(connection=connection_, taken_at=taken, import_peak=Decimal(reading))
    invoice = invoice_issue(connection=connection_, period=date(2024, 1, 1), created_by=creator)
    cash = PaymentMethod.objects.get_or_create(
        code="bank-counter", defaults={"name": "Paid at Bank Counter"}
    )[0]
    payment_post(invoice=invoice, amount=paid, method=cash, received_by=creator)
    invoice.refresh_from_db()
    return Tenant(provider=provider, invoice=invoice)


def alpha_and_bravo() -> tuple[Tenant, Tenant]:
    return (
        tenant("ALPHA", kwh=300, paid=Decimal("1000.00")),
        tenant("BRAVO", kwh=98765, paid=Decimal("4321.09")),
    )


def _scalars(value: object) -> list[object]:
    if isinstance(value, dict):
        return [item for nested in value.values() for item in _scalars(nested)]
    if isinstance(value, list):
        return [item for nested in value for item in _scalars(nested)]
    return [value]


def _figure(value: object) -> Decimal | None:
    try:
        return (
            Decimal(str(value))
            if isinstance(value, int | float | str) and not isinstance(value, bool)
            else None
        )
    except InvalidOperation:
        return None


def assert_only_provider(result: QueryResult, provider_id: int) -> None:
    """No value of the answer is one of BRAVO's, and every provider_id in it is the auditor's."""
    assert "bravo" not in json.dumps(result.rows).lower(), f"another provider's rows came back: {result.rows}"
    figures = [value for value in _scalars(result.rows) if _figure(value) in BRAVO_FIGURES]
    assert not figures, f"another provider's figures came back ({figures}): {result.rows}"
    for position, column in enumerate(result.columns):
        if column == "provider_id":
            assert {row[position] for row in result.rows} <= {provider_id}, result.rows


def database_state() -> dict[str, str]:
    """Every table's row count and a digest of its rows, read through Django's own connection."""
    state = {}
    with connection.cursor() as cursor:
        for table in sorted(connection.introspection.table_names(cursor)):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            rows = sorted(repr(row) for row in cursor.fetchall())
            state[table] = f"{len(rows)} {hashlib.sha256(chr(10).join(rows).encode()).hexdigest()}"
    return state
