"""Loads the demo: the sample distribution company with its price schedule, customers, connections
and a year of meter readings, a second provider with one flat price, and one user per role.

It lives in `invoicing`, the top of the domain apps, because it grows with each of them (pricing,
connections and readings, bills). Running it twice changes nothing.
"""

import json
from decimal import Decimal
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
from billing.months import next_month
from invoicing import selectors, services
from invoicing.models import OPEN_STATUSES, Invoice, PaymentMethod
from providers.importing import price_schedule_import
from providers.models import Provider
from providers.services import flat_price_in_force, provider_create, provider_price_set

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
        readings = sample_import(provider=providers["DISCO"], data=data).readings
        issued, paid = self._bill_sample(providers["DISCO"])
        self.stdout.write(
            f"Demo data ready: {len(providers)} providers, {created} users created, "
            f"{Customer.objects.count()} customers, {readings.accepted} readings recorded "
            f"({readings.unchanged} already there), {issued} bills issued, {paid} paid."
        )

    def _bill_sample(self, provider: Provider) -> tuple[int, int]:
        """Bill every month of the sample's readings, as the monthly run would have; the bills of all
        but the last two months are paid, so the demo shows paid, unpaid and overdue bills."""
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
        for period in months:
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
                )
                paid += 1
        services.invoices_mark_overdue(provider=provider)
        return issued, paid
