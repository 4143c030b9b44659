"""Loading a provider's customers, connections and meter readings from a disco_sample.json-shaped
file, through the same services as every other write. Idempotent: what is already stored is left
alone, and readings already stored with the same registers count as unchanged.
"""

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db import transaction

from accounts.models import User, normalize_email
from billing.models import Customer, CustomerKind, ReadingSource, ServiceConnection
from billing.services import UploadReport, connection_create, customer_create, readings_upload
from providers.models import ConnectionType, Provider

CUSTOMER_KINDS = {
    "Residential": CustomerKind.RESIDENTIAL,
    "Commercial": CustomerKind.COMMERCIAL,
    "Industry": CustomerKind.INDUSTRIAL,
    "Industrial": CustomerKind.INDUSTRIAL,
}


@dataclass(frozen=True)
class SampleImportResult:
    customers_created: int
    connections_created: int
    readings: UploadReport


@transaction.atomic
def customers_and_connections_import(*, provider: Provider, data: dict[str, Any]) -> tuple[int, int]:
    """All or nothing: the customers and connections of the file."""
    customers = {c.number: c for c in Customer.objects.filter(provider=provider)}
    created_customers = 0
    for item in data.get("customers", []):
        if item["customer_id"] in customers:
            continue
        email = normalize_email(item["email"])
        existing_user = User.objects.filter(email=email, provider=provider).first()
        customers[item["customer_id"]] = customer_create(
            provider=provider,
            number=item["customer_id"],
            name=f"{item['first_name']} {item['last_name']}".strip(),
            email=email,
            phone=item.get("phone_number") or "",
            address=item.get("address") or "",
            kind=CUSTOMER_KINDS.get(item.get("customer_type"), CustomerKind.RESIDENTIAL),
            organisation=item.get("org_name") or "",
            user=existing_user,
            login=existing_user is None,
        )
        created_customers += 1

    places = {(d["division_id"], d["subdivision_id"]): d for d in data.get("divisions", [])}
    types = {t.code: t for t in ConnectionType.objects.filter(provider=provider)}
    known = set(ServiceConnection.objects.filter(provider=provider).values_list("number", flat=True))
    created_connections = 0
    for item in data.get("connections", []):
        if item["connection_id"] in known:
            continue
        place = places.get((item.get("division_id"), item.get("subdivision_id")), {})
        connection_create(
            customer=customers[item["customer_id"]],
            number=item["connection_id"],
            connection_type=types[str(item["connection_type_code"])],
            meter_type=item.get("meter_type") or "",
            division=place.get("division_name", ""),
            subdivision=place.get("subdivision_name", ""),
            installation_date=date.fromisoformat(item["installation_date"])
            if item.get("installation_date")
            else None,
            status=item.get("status") or "Active",
        )
        created_connections += 1
    return created_customers, created_connections


def sample_import(*, provider: Provider, data: dict[str, Any]) -> SampleImportResult:
    customers, connections = customers_and_connections_import(provider=provider, data=data)
    readings = readings_upload(
        provider=provider, rows=data.get("meter_readings", []), recorded_by=None, source=ReadingSource.IMPORT
    )
    return SampleImportResult(customers, connections, readings)
