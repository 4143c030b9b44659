"""The e-mail schedules in django-celery-beat (editable in admin): the reconciler that sends again the
messages whose task was lost (every RECONCILE_EVERY_SECONDS, from the settings, when it is created),
and the daily "your bill is due soon" reminders, at nine in the morning in the providers' local time
(the task belongs to invoicing, which owns the bills; the e-mail schedules are kept together here)."""

from django.conf import settings
from django.db import migrations

RECONCILER = ("Reconcile e-mail messages", "accounts.reconcile_messages")
REMINDERS = ("Remind customers of bills due soon", "invoicing.remind_bills_due_soon")
ZONE = "Asia/Karachi"


def forwards(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = IntervalSchedule.objects.get_or_create(every=settings.RECONCILE_EVERY_SECONDS, period="seconds")
    name, task = RECONCILER
    PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "interval": every})
    morning, _ = CrontabSchedule.objects.get_or_create(
        minute="0", hour="9", day_of_week="*", day_of_month="*", month_of_year="*", timezone=ZONE
    )
    name, task = REMINDERS
    PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "crontab": morning})


def backwards(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name__in=[RECONCILER[0], REMINDERS[0]]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_messages"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
