"""How the Django admin shows amounts and billing months, in its lists and on its record pages.

Django renders a model field's value with `display_for_field` (lists, read-only fields, inlines): a
Decimal without thousands separators unless USE_THOUSAND_SEPARATOR is on, which would also group
ids, years and account numbers, and a date as "Dec. 1, 2026". Wrapped here, in the admin only:
every Decimal (money, kWh, rates) is grouped, and a billing month (stored as its first day) reads
"December 2026". Everything else is Django's own rendering.
"""

from typing import Any

from django.contrib.admin import helpers, utils
from django.contrib.admin.templatetags import admin_list
from django.db import models
from django.utils import formats

# The date fields that hold a month, as its first day.
MONTH_FIELDS = {("invoicing.Invoice", "period"), ("invoicing.BillingRun", "period")}

_django_display = utils.display_for_field


def display_for_field(
    value: Any, field: models.Field, empty_value_display: str, avoid_link: bool = False
) -> Any:
    if value is not None and not getattr(field, "flatchoices", None):
        if isinstance(field, models.DecimalField):
            return formats.number_format(value, field.decimal_places, force_grouping=True)
        if isinstance(field, models.DateField) and (field.model._meta.label, field.name) in MONTH_FIELDS:
            return formats.date_format(value, "F Y")
    return _django_display(value, field, empty_value_display, avoid_link)


def install() -> None:
    """The admin's two renderers import the function by name: both are pointed at this one."""
    for module in (utils, helpers, admin_list):
        module.display_for_field = display_for_field
