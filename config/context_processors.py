from django.conf import settings
from django.http import HttpRequest


def currency(request: HttpRequest) -> dict[str, str]:
    """The currency pages print amounts in: the signed-in user's provider's (money filters)."""
    provider = getattr(getattr(request, "user", None), "provider", None)
    return {"currency": provider.currency if provider is not None else settings.DEFAULT_CURRENCY}
