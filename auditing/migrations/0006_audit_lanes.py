"""Lanes: a provider's trail becomes a few hash chains, so writers never queue on one chain head.

Every existing row and head is lane 0 of its chain, so the chains written so far verify unchanged.
The head table is rebuilt (its key was the chain alone): a new one is made, the heads copied, the old
one dropped and the new one renamed."""

from django.db import migrations, models


def copy_heads(apps, schema_editor):
    old, new = apps.get_model("auditing", "ChainHead"), apps.get_model("auditing", "LaneHead")
    new.objects.bulk_create(
        new(chain=head.chain, lane=0, last_hash=head.last_hash) for head in old.objects.all()
    )


def copy_heads_back(apps, schema_editor):
    old, new = apps.get_model("auditing", "ChainHead"), apps.get_model("auditing", "LaneHead")
    if new.objects.exclude(lane=0).exists():
        raise RuntimeError(
            "The trail has lanes other than 0 now: it cannot go back to one chain per provider."
        )
    old.objects.bulk_create(old(chain=head.chain, last_hash=head.last_hash) for head in new.objects.all())


class Migration(migrations.Migration):
    dependencies = [("auditing", "0005_reconciler")]

    operations = [
        migrations.AddField(
            model_name="auditlog",
            name="lane",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.CreateModel(
            name="LaneHead",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("chain", models.BigIntegerField()),
                ("lane", models.PositiveSmallIntegerField(default=0)),
                ("last_hash", models.CharField(max_length=64)),
            ],
        ),
        migrations.RunPython(copy_heads, copy_heads_back),
        migrations.DeleteModel(name="ChainHead"),
        migrations.RenameModel(old_name="LaneHead", new_name="ChainHead"),
        migrations.AddConstraint(
            model_name="chainhead",
            constraint=models.UniqueConstraint(fields=("chain", "lane"), name="chain_head_lane_once"),
        ),
    ]
