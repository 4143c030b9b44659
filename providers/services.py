from decimal import Decimal
from typing import Any

from django.db import transaction

from config.errors import Conflict
from providers.models import Provider

PROVIDER_EDITABLE_FIELDS = (
    "name",
    "city",
    "email",
    "phone",
    "is_active",
    "currency",
    "due_days",
    "late_surcharge_percent",
)


@transaction.atomic
def provider_create(
    *,
    code: str,
    name: str,
    city: str,
    email: str,
    phone: str = "",
    currency: str = "PKR",
    due_days: int = 10,
    late_surcharge_percent: Decimal = Decimal("10.00"),
    is_active: bool = True,
) -> Provider:
    code = code.strip().upper()
    if Provider.objects.filter(code=code).exists():
        raise Conflict(f"A provider with code {code} already exists; choose another code.", field="code")
    provider = Provider(
        code=code,
        name=name,
        city=city,
        email=email,
        phone=phone,
        currency=currency.upper(),
        due_days=due_days,
        late_surcharge_percent=late_surcharge_percent,
        is_active=is_active,
    )
    provider.full_clean()
    provider.save()
    return provider


@transaction.atomic
def provider_update(*, provider: Provider, **changes: Any) -> Provider:
    unknown = set(changes) - set(PROVIDER_EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"provider_update cannot change {sorted(unknown)}")
    provider = Provider.objects.select_for_update().get(pk=provider.pk)
    for field, value in changes.items():
        setattr(provider, field, value)
    provider.full_clean()
    provider.save(update_fields=[*changes, "updated_at"])
    return provider
