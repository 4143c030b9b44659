from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from providers.models import Provider
from providers.tenancy import scope_to_provider


def provider_list_for(*, user: Any) -> QuerySet[Provider]:
    return scope_to_provider(Provider.objects.all(), user, field="pk")


def provider_get_for(*, user: Any, provider_id: int) -> Provider:
    return get_object_or_404(provider_list_for(user=user), pk=provider_id)
