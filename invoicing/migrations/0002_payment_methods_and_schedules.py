"""The payment methods of the first seed (editable in Django admin afterwards), and the schedules of
the monthly billing run and the daily overdue job in django-celery-beat (editable in admin too)."""

from django.db import migrations

METHODS = [
    ("bank-counter", "Paid at Bank Counter"),
    ("ibft", "IBFT"),
    ("card", "Credit/Debit Card"),
    ("jazzcash", "JazzCash"),
    ("easypaisa", "EasyPaisa"),
]
# (name, task, minute, hour, day of month), in the providers' local time.
SCHEDULES = [
    ("Monthly billing run", "invoicing.bill_month_just_ended", "0", "2", "1"),
    ("Mark overdue bills", "invoicing.mark_overdue", "30", "0", "*"),
]
ZONE = "Asia/Karachi"


def forwards(apps, schema_editor):
    PaymentMethod = apps.get_model("invoicing", "PaymentMethod")
    for position, (code, name) in enumerate(METHODS, start=1):
        PaymentMethod.objects.get_or_create(code=code, defaults={"name": name, "position": position})
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, minute, hour, day in SCHEDULES:
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=minute, hour=hour, day_of_week="*", day_of_month=day, month_of_year="*", timezone=ZONE
        )
        PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "crontab": crontab})


def backwards(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name__in=[name for name, *_ in SCHEDULES]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("invoicing", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
