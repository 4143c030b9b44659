from django.db import models


class Role(models.TextChoices):
    """The five roles, spelled as the API and the original system spell them."""

    CUSTOMER = "Customer", "Customer"
    INVOICE_CREATOR = "Invoice_Creator", "Invoice creator"
    SUPER_CREATOR = "Super_Creator", "Super creator"
    AUDITOR = "Auditor", "Auditor"
    ADMIN = "Admin", "Administrator"


# A platform user (no provider) administers providers; every other role works inside a provider.
PLATFORM_ROLES = frozenset({Role.ADMIN})
