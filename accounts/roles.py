from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    """The five roles, spelled as the API and the original system spell them."""

    CUSTOMER = "Customer", _("Customer")
    INVOICE_CREATOR = "Invoice_Creator", _("Invoice creator")
    SUPER_CREATOR = "Super_Creator", _("Super creator")
    AUDITOR = "Auditor", _("Auditor")
    ADMIN = "Admin", _("Administrator")


# A platform user (no provider) administers providers; every other role works inside a provider.
PLATFORM_ROLES = frozenset({Role.ADMIN})
