"""The ledger check compares whole cents: SQLite keeps decimals as REAL and added them in floating
point, so about one part payment in six failed the old check there (PostgreSQL was never affected)."""

from django.db import migrations, models
from django.db.models.functions import Round
from django.db.models.lookups import Exact


def cents(name: str) -> Round:
    return Round(models.F(name) * 100)


class Migration(migrations.Migration):
    dependencies = [
        ("invoicing", "0002_payment_methods_and_schedules"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="invoice", name="invoice_balance_is_ledger"),
        migrations.AddConstraint(
            model_name="invoice",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    Exact(
                        cents("balance"),
                        cents("current_charges") + cents("adjustment_total") - cents("amount_paid"),
                    )
                )
                | models.Q(status="Cancelled"),
                name="invoice_balance_is_ledger",
            ),
        ),
    ]
