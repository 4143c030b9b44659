"""Loads the demo: the sample distribution company with its price schedule, customers, connections
and a year of meter readings, a second provider with one flat price, and one user per role.

The sample ends in 2024 (readings in September, prices on 31 December). The demo carries it on up to
the month just ended, so a fresh demo is alive whatever today is: the schedule by a price change from
2025-01-01 that keeps every figure, readings by repeating each connection's own year, bills month
after month, each paid within its payment window but the last two months'. The sample's own months
are left exactly as the file has them (the worked examples are computed from them).

It lives in `invoicing`, the top of the domain apps, because it grows with each of them (pricing,
connections and readings, bills). Running it twice the same day changes nothing.
"""

import json
from collections import defaultdict
from dataclasses import fields
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import Max, Min
from django.utils import timezone

from accounts.models import User
from accounts.roles import Role
from accounts.services import user_create
from billing.importing import sample_import
from billing.models import Customer, MeterReading
from billing.months import month_end, next_month, previous_month
from invoicing import selectors, services
from invoicing.models import OPEN_STATUSES, BillingRun, BillingRunStatus, Invoice, PaymentMethod
from invoicing.services.notices import muted
from providers.importing import price_schedule_import
from providers.models import FixedCharge, Provider, Subsidy, TariffRow, TaxRule
from providers.services import (
    TariffSpec,
    flat_price_in_force,
    provider_create,
    provider_price_set,
    schedule_row_add,
    tariff_change,
)

DEMO_PASSWORD = "billing-demo-2026"  # noqa: S105  a demo login, printed in the README
SAMPLE_PATH = settings.BASE_DIR.parent / "shared" / "data" / "disco_sample.json"

PROVIDERS = [
    {
        "code": "DISCO",
        "name": "Lahore Distribution Company",
        "city": "Lahore",
        "email": "billing@disco.example",
        "phone": "042-111-000-111",
        "currency": "PKR",
        "due_days": 10,
        "late_surcharge_percent": Decimal("10.00"),
    },
    {
        "code": "NEPCO",
        "name": "Northern Electric Power Company",
        "city": "Islamabad",
        "email": "billing@nepco.example",
        "phone": "051-111-222-333",
        "currency": "PKR",
        "due_days": 14,
        "late_surcharge_percent": Decimal("5.00"),
    },
]

# (email, name, provider code or None for the platform, roles, designation)
USERS = [
    ("platform@billing.example", "Platform Administrator", None, [Role.ADMIN], ""),
    ("admin@disco.example", "Ayesha Malik", "DISCO", [Role.ADMIN], "Billing Manager"),
    ("creator@disco.example", "Bilal Hussain", "DISCO", [Role.INVOICE_CREATOR], "Billing Clerk"),
    ("super@disco.example", "Farah Siddiqui", "DISCO", [Role.SUPER_CREATOR], "Senior Billing Officer"),
    ("auditor@disco.example", "Omar Farooq", "DISCO", [Role.AUDITOR], "Internal Auditor"),
    ("multi@disco.example", "Hina Raza", "DISCO", [Role.INVOICE_CREATOR, Role.AUDITOR, Role.CUSTOMER], ""),
    ("admin@nepco.example", "Usman Tariq", "NEPCO", [Role.ADMIN], "Billing Manager"),
]


NEPCO_FLAT_PRICE = Decimal("32.5000")  # per kWh: the second provider bills the simple way

# The sample's schedule is in force to 2024-12-31; its administrator carried it on from the next day,
# as a change set on the first of December (a price change is never dated in the past).
CARRIED_ON_FROM = date(2025, 1, 1)
CARRIED_ON_SET = date(2024, 12, 1)
# A row's own figures: what a carried-on copy keeps (all but its id, dates and who opened or closed it).
BOOKKEEPING = {"id", "valid_from", "valid_to", "created_by", "created_at", "closed_by", "closed_at"}
REGISTERS = MeterReading.REGISTERS
PAID_AT = time(11, 0)  # the demo's customers pay before noon


class Command(BaseCommand):
    help = "Load the demo providers, their prices and users (idempotent)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--sample", type=Path, default=SAMPLE_PATH, help="disco_sample.json")

    @transaction.atomic
    def handle(self, *args: Any, sample: Path, **options: Any) -> None:
        providers = {}
        for values in PROVIDERS:
            provider = Provider.objects.filter(code=values["code"]).first()
            providers[values["code"]] = provider or provider_create(**values)

        data = json.loads(sample.read_text())
        price_schedule_import(provider=providers["DISCO"], data=data)
        through = previous_month(timezone.localdate())
        data["meter_readings"] += continued_readings(data["meter_readings"], through=through)
        if flat_price_in_force(provider=providers["NEPCO"], day=timezone.localdate()) is None:
            provider_price_set(provider=providers["NEPCO"], price=NEPCO_FLAT_PRICE, changed_by=None)

        customer = data["customers"][0]  # the demo's customer login
        users = [
            *USERS,
            (
                customer["email"],
                f"{customer['first_name']} {customer['last_name']}",
                "DISCO",
                [Role.CUSTOMER],
                "",
            ),
        ]
        created = 0
        for email, name, code, roles, designation in users:
            if User.objects.filter(email=email).exists():
                continue
            user_create(
                email=email,
                name=name,
                provider=providers[code] if code else None,
                roles=list(roles),
                password=DEMO_PASSWORD,
                designation=designation,
            )
            created += 1
        carry_prices_on(providers["DISCO"], changed_by=User.objects.get(email="admin@disco.example"))
        readings = sample_import(provider=providers["DISCO"], data=data).readings
        with muted():  # months gone by: their bills and payments are history, e-mailed to nobody
            issued, paid = self._bill_sample(providers["DISCO"])
        self.stdout.write(
            f"Demo data ready: {len(providers)} providers, {created} users created, "
            f"{Customer.objects.count()} customers, {readings.accepted} readings recorded "
            f"({readings.unchanged} already there), {issued} bills issued, {paid} paid."
        )

    def _bill_sample(self, provider: Provider) -> tuple[int, int]:
        """Bill every month of the readings, as the monthly run would have; the bills of all but the
        last two months are paid, each within its payment window, so the demo shows paid, unpaid and
        overdue bills."""
        taken = MeterReading.objects.filter(provider=provider).aggregate(
            first=Min("taken_at"), last=Max("taken_at")
        )
        if taken["first"] is None:
            return 0, 0
        first, last = timezone.localdate(taken["first"]), timezone.localdate(taken["last"])
        months = []
        month = next_month(first.replace(day=1))
        while month <= last.replace(day=1):
            months.append(month)
            month = next_month(month)
        cashier = User.objects.get(email="super@disco.example")
        methods = list(PaymentMethod.objects.filter(is_active=True))
        issued = paid = 0
        billed = set(
            BillingRun.objects.filter(provider=provider, status=BillingRunStatus.COMPLETED).values_list(
                "period", flat=True
            )
        )
        for period in months:
            if period in billed:
                continue  # loaded by an earlier run of the demo
            run, _ = services.billing_run_start(provider=provider, period=period)
            for chunk_id in selectors.pending_chunks(run):
                services.billing_run_chunk_bill(chunk_id=chunk_id)
            run.refresh_from_db()
            issued += run.issued
            if period >= months[-2]:
                continue  # the last two months stay unpaid
            for invoice in Invoice.objects.filter(provider=provider, period=period, status__in=OPEN_STATUSES):
                services.payment_post(
                    invoice=invoice,
                    amount=invoice.balance,
                    method=methods[invoice.pk % len(methods)],
                    received_by=cashier,
                    reference=f"DEMO-{invoice.number}",
                    received_at=paid_at(invoice),
                )
                paid += 1
        services.invoices_mark_overdue(provider=provider)
        return issued, paid


def paid_at(invoice: Invoice) -> datetime:
    """A day from the bill's issue to its due date (spread by the bill's id), before noon: on time."""
    window = (invoice.due_date - invoice.issue_date).days
    day = invoice.issue_date + timedelta(days=invoice.pk % (window + 1))
    return timezone.make_aware(datetime.combine(day, PAID_AT))


def carry_prices_on(provider: Provider, *, changed_by: User) -> None:
    """Open every tariff, tax, fixed charge and subsidy that ends with the sample's schedule again from
    `CARRIED_ON_FROM`, with the same figures: the tariffs by one price change per connection type,
    the others row by row, through the services an administrator uses."""
    if TariffRow.objects.filter(provider=provider, valid_from__gte=CARRIED_ON_FROM).exists():
        return
    by_type = defaultdict(list)
    ending = TariffRow.objects.filter(provider=provider, valid_to=CARRIED_ON_FROM).order_by("pk")
    for row in ending.select_related("connection_type"):
        by_type[row.connection_type].append(
            TariffSpec(**{spec.name: getattr(row, spec.name) for spec in fields(TariffSpec)})
        )
    for connection_type, rows in by_type.items():
        tariff_change(
            provider=provider,
            connection_type=connection_type,
            valid_from=CARRIED_ON_FROM,
            rows=rows,
            changed_by=changed_by,
            today=CARRIED_ON_SET,
        )
    for kind in (TaxRule, FixedCharge, Subsidy):
        for row in kind.objects.filter(provider=provider, valid_to=CARRIED_ON_FROM).order_by("pk"):
            figures = {
                field.attname: getattr(row, field.attname)
                for field in kind._meta.concrete_fields
                if field.name not in BOOKKEEPING
            }
            schedule_row_add(
                row=kind(**figures, valid_from=CARRIED_ON_FROM),
                created_by=changed_by,
                today=CARRIED_ON_SET,
            )


def continued_readings(rows: list[dict[str, Any]], *, through: date) -> list[dict[str, Any]]:
    """Readings in the sample's shape for each connection from the month after its last one up to the
    month `through`, read at 23:59 on the month's last day as the sample's meters are.

    A month's units per register are the connection's units in the same calendar month of its latest
    year in the sample, so the seasons repeat and a given `through` always gives the same readings."""
    last_of_month: dict[str, dict[date, dict[str, Any]]] = defaultdict(dict)
    for row in sorted(rows, key=lambda row: row["timestamp"]):
        taken = datetime.fromisoformat(row["timestamp"])
        last_of_month[row["connection_id"]][date(taken.year, taken.month, 1)] = row
    continued = []
    for number, months in last_of_month.items():
        ordered = sorted(months)
        units: dict[int, dict[str, Decimal]] = {}  # calendar month -> register -> units; latest wins
        for before, month in pairwise(ordered):
            if next_month(before) == month:
                units[month.month] = {
                    name: Decimal(str(months[month][name])) - Decimal(str(months[before][name]))
                    for name in REGISTERS
                }
        registers = {name: Decimal(str(months[ordered[-1]][name])) for name in REGISTERS}
        month = next_month(ordered[-1])
        while month <= through:
            registers = {name: registers[name] + units[month.month][name] for name in REGISTERS}
            continued.append(
                {
                    "connection_id": number,
                    "timestamp": f"{month_end(month.year, month.month)}T23:59:00",
                    **{name: f"{value}" for name, value in registers.items()},
                    "status": "Valid",
                }
            )
            month = next_month(month)
    return continued
