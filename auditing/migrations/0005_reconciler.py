"""No question is lost: when each was last sent, and the reconciler that sends a question still
pending again (every RECONCILE_EVERY_SECONDS, from the settings, when it is created; editable in admin)."""

from django.conf import settings
from django.db import migrations, models

RECONCILER = ("Reconcile AI questions", "auditing.reconcile_ai_queries")


def forwards(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = IntervalSchedule.objects.get_or_create(every=settings.RECONCILE_EVERY_SECONDS, period="seconds")
    name, task = RECONCILER
    PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "interval": every})


def backwards(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=RECONCILER[0]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auditing", "0004_ai_reader_catalog"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.AddField(
            model_name="aiquery",
            name="dispatched_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(forwards, backwards),
    ]
