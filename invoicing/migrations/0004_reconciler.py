"""No billing run is lost: when each run's chunks were last sent, the reconciler that sends the chunks
of a stalled run again (every RECONCILE_EVERY_SECONDS, from the settings, when it is created), and a
daily catch-up of the monthly run for any provider still without one (beat down on the 1st, the
broker down at 02:00, a provider whose start failed). Both schedules are editable in admin."""

from django.conf import settings
from django.db import migrations, models

RECONCILER = ("Reconcile billing runs", "invoicing.reconcile_billing_runs")
CATCH_UP = ("Billing run catch-up", "invoicing.bill_month_just_ended")
CATCH_UP_DESCRIPTION = (
    "Starts the run of the month just ended for any active provider that has none. Runs from the 2nd, "
    "after the monthly run of the 1st: keep it after that one if you move it."
)
ZONE = "Asia/Karachi"


def forwards(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = IntervalSchedule.objects.get_or_create(every=settings.RECONCILE_EVERY_SECONDS, period="seconds")
    name, task = RECONCILER
    PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "interval": every})
    daily, _ = CrontabSchedule.objects.get_or_create(
        minute="0", hour="2", day_of_week="*", day_of_month="2-31", month_of_year="*", timezone=ZONE
    )
    name, task = CATCH_UP
    PeriodicTask.objects.get_or_create(
        name=name, defaults={"task": task, "crontab": daily, "description": CATCH_UP_DESCRIPTION}
    )


def backwards(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name__in=[RECONCILER[0], CATCH_UP[0]]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("invoicing", "0003_ledger_check_in_cents"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.AddField(
            model_name="billingrun",
            name="dispatched_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(forwards, backwards),
    ]
