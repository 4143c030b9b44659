"""Bank payment files: the providers' file layouts, the files and their rows; a bank reference posted
once per provider; and the reconciler that sends again the chunks of a file whose messages were lost
(every RECONCILE_EVERY_SECONDS, from the settings, when it is created; editable in admin)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


RECONCILER = ("Reconcile payment files", "invoicing.reconcile_payment_files")


def forwards(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = IntervalSchedule.objects.get_or_create(
        every=settings.RECONCILE_EVERY_SECONDS, period="seconds"
    )
    name, task = RECONCILER
    PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "interval": every})


def backwards(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=RECONCILER[0]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0008_customer_and_connection_number_indexes"),
        ("invoicing", "0014_credit_notes_and_credit_balance"),
        ("providers", "0005_provider_reconnection_fee"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="PaymentFile",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(help_text="The uploaded file's name.", max_length=255)),
                ("sha256", models.CharField(max_length=64)),
                ("uploaded_role", models.CharField(max_length=20)),
                ("uploaded_at", models.DateTimeField(auto_now_add=True)),
                (
                    "status",
                    models.CharField(
                        choices=[("processing", "Processing"), ("completed", "Completed")],
                        default="processing",
                        max_length=12,
                    ),
                ),
                ("chunk_size", models.PositiveIntegerField()),
                ("total", models.PositiveIntegerField(default=0)),
                ("done", models.PositiveIntegerField(default=0)),
                ("posted", models.PositiveIntegerField(default=0)),
                ("duplicates", models.PositiveIntegerField(default=0)),
                ("refused", models.PositiveIntegerField(default=0)),
                ("posted_amount", models.DecimalField(decimal_places=2, default=0, max_digits=14)),
                ("dispatched_at", models.DateTimeField(blank=True, null=True)),
                ("progressed_at", models.DateTimeField(blank=True, null=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "ordering": ["-uploaded_at", "-id"],
            },
        ),
        migrations.CreateModel(
            name="PaymentFileFormat",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "name",
                    models.CharField(
                        help_text="The bank or collection agent, e.g. HBL collections.", max_length=100
                    ),
                ),
                ("bill_number_column", models.CharField(blank=True, max_length=60)),
                ("connection_number_column", models.CharField(blank=True, max_length=60)),
                ("amount_column", models.CharField(max_length=60)),
                ("date_column", models.CharField(max_length=60)),
                (
                    "method_column",
                    models.CharField(
                        blank=True, help_text="Empty: every row is the default method.", max_length=60
                    ),
                ),
                (
                    "reference_column",
                    models.CharField(help_text="The bank's own transaction id.", max_length=60),
                ),
                (
                    "date_format",
                    models.CharField(
                        default="%Y-%m-%d",
                        help_text="As Python's strptime writes it: %d/%m/%Y for 31/07/2024.",
                        max_length=30,
                    ),
                ),
                ("decimal_comma", models.BooleanField(default=False)),
                (
                    "delimiter",
                    models.CharField(
                        choices=[
                            (",", "Comma (,)"),
                            (";", "Semicolon (;)"),
                            ("\t", "Tab"),
                            ("|", "Pipe (|)"),
                        ],
                        default=",",
                        max_length=1,
                    ),
                ),
                (
                    "is_active",
                    models.BooleanField(
                        default=True, help_text="Only active formats are offered for uploads."
                    ),
                ),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={
                "ordering": ["provider_id", "name"],
            },
        ),
        migrations.CreateModel(
            name="PaymentFileRow",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "line",
                    models.PositiveIntegerField(
                        help_text="The row's line in the file; the header is line 1."
                    ),
                ),
                ("bill_number", models.CharField(blank=True, max_length=40)),
                ("connection_number", models.CharField(blank=True, max_length=40)),
                ("amount", models.DecimalField(blank=True, decimal_places=2, max_digits=14, null=True)),
                ("paid_on", models.DateField(blank=True, null=True)),
                ("reference", models.CharField(blank=True, max_length=100)),
                (
                    "outcome",
                    models.CharField(
                        choices=[
                            ("pending", "Not posted yet"),
                            ("posted", "Posted"),
                            ("duplicate", "Duplicate"),
                            ("refused", "Refused"),
                        ],
                        default="pending",
                        max_length=10,
                    ),
                ),
                ("reason", models.CharField(blank=True, max_length=500)),
            ],
            options={
                "ordering": ["file_id", "line"],
            },
        ),
        migrations.AddConstraint(
            model_name="payment",
            constraint=models.UniqueConstraint(
                condition=models.Q(("reference", ""), _negated=True),
                fields=("provider", "reference"),
                name="payment_reference_once_per_provider",
            ),
        ),
        migrations.AddField(
            model_name="paymentfile",
            name="provider",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="payment_files",
                to="providers.provider",
            ),
        ),
        migrations.AddField(
            model_name="paymentfile",
            name="uploaded_by",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="+", to=settings.AUTH_USER_MODEL
            ),
        ),
        migrations.AddField(
            model_name="paymentfileformat",
            name="default_method",
            field=models.ForeignKey(
                blank=True,
                help_text="The method of a row whose method column is empty (or of every row, without one).",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="invoicing.paymentmethod",
            ),
        ),
        migrations.AddField(
            model_name="paymentfileformat",
            name="provider",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="payment_file_formats",
                to="providers.provider",
            ),
        ),
        migrations.AddField(
            model_name="paymentfile",
            name="file_format",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="files",
                to="invoicing.paymentfileformat",
            ),
        ),
        migrations.AddField(
            model_name="paymentfilerow",
            name="file",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="rows",
                to="invoicing.paymentfile",
            ),
        ),
        migrations.AddField(
            model_name="paymentfilerow",
            name="method",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="invoicing.paymentmethod",
            ),
        ),
        migrations.AddField(
            model_name="paymentfilerow",
            name="payment",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="invoicing.payment",
            ),
        ),
        migrations.AddConstraint(
            model_name="paymentfileformat",
            constraint=models.UniqueConstraint(
                fields=("provider", "name"), name="payment_file_format_name_unique"
            ),
        ),
        migrations.AddConstraint(
            model_name="paymentfileformat",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("bill_number_column", ""), ("connection_number_column", ""), _negated=True
                ),
                name="payment_file_format_names_a_bill",
            ),
        ),
        migrations.AddIndex(
            model_name="paymentfile",
            index=models.Index(fields=["provider", "uploaded_at"], name="payment_file_provider"),
        ),
        migrations.AddIndex(
            model_name="paymentfilerow",
            index=models.Index(fields=["file", "outcome"], name="payment_file_row_outcome"),
        ),
        migrations.AddConstraint(
            model_name="paymentfilerow",
            constraint=models.UniqueConstraint(fields=("file", "line"), name="payment_file_row_line_unique"),
        ),
        migrations.AddConstraint(
            model_name="paymentfilerow",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("outcome", "posted"), _negated=True),
                    ("payment__isnull", False),
                    _connector="OR",
                ),
                name="payment_file_row_posted_payment",
            ),
        ),
        migrations.RunPython(forwards, backwards),
    ]
