"""The audit trail: one row per change or event, never updated or deleted, chained by hashes.

Each provider's trail (platform rows, with no provider, form their own) is a few hash chains, its
lanes: each row carries the hash of the row before it in its lane, and its own hash over its content
and that previous hash. Editing, removing or inserting a row breaks its lane at that row, and removing
a lane's last rows shows against the lane's head: `manage.py audit_verify` names the row. Writers take
whichever lane is free, so one writer's append never waits for another's transaction to commit.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class AuditLogQuerySet(models.QuerySet):
    def update(self, **kwargs: object) -> int:
        raise AppendOnly("Audit rows are never changed.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnly("Audit rows are never deleted.")


class AppendOnly(Exception):
    """An attempt to change or delete an audit row."""


class AuditLog(models.Model):
    provider = models.ForeignKey(
        "providers.Provider", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Who acted, in which role; empty for the system (a scheduled job).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_role = models.CharField(max_length=20, blank=True)
    # create, update, delete, or an event: login, login_failed, logout, role_selected, role_switched,
    # role_removed, ai_query.
    action = models.CharField(max_length=30)
    object_type = models.CharField(max_length=60, blank=True)  # app_label.model
    object_id = models.CharField(max_length=40, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    old_values = models.JSONField(null=True, blank=True)
    new_values = models.JSONField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)
    lane = models.PositiveSmallIntegerField(default=0)  # the chain of the provider's trail it is linked in

    objects = AuditLogQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["provider", "object_type", "object_id"], name="audit_object"),
            models.Index(fields=["provider", "-id"], name="audit_provider_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.object_type} {self.object_id}".strip()

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None:
            raise AppendOnly("Audit rows are never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise AppendOnly("Audit rows are never deleted.")


class ChainHead(models.Model):
    """The last hash of each lane of a provider's trail (chain: the provider's id, 0 for the platform),
    locked by the transaction appending to the lane until it commits, so a lane's rows are appended
    one transaction at a time, in the order of their ids."""

    chain = models.BigIntegerField()
    lane = models.PositiveSmallIntegerField(default=0)
    last_hash = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["chain", "lane"], name="chain_head_lane_once")]

    def __str__(self) -> str:
        return f"chain {self.chain}, lane {self.lane}"


class AIQueryStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for a worker")
    ANSWERED = "answered", _("Answered")
    REFUSED = "refused", _("Refused")
    FAILED = "failed", _("Failed")


class AIQuery(models.Model):
    """An auditor's question, the SQL it became, the verdict, and the answer."""

    provider = models.ForeignKey("providers.Provider", on_delete=models.PROTECT, related_name="+")
    asked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    question = models.TextField()
    status = models.CharField(max_length=10, choices=AIQueryStatus.choices, default=AIQueryStatus.PENDING)
    generator = models.CharField(max_length=40, blank=True)  # which assistant wrote the SQL
    generated_sql = models.TextField(blank=True)
    executed_sql = models.TextField(blank=True)  # as scoped to the provider and capped
    reason = models.TextField(blank=True)  # why it was refused or failed
    columns = models.JSONField(default=list)
    rows = models.JSONField(default=list)
    truncated = models.BooleanField(default=False)
    milliseconds = models.PositiveIntegerField(null=True, blank=True)  # generation, checks and execution
    created_at = models.DateTimeField(auto_now_add=True)
    # When it was last handed to the broker; none yet when that failed. The reconciler sends a
    # question still pending a while after that (or after it was asked) again.
    dispatched_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = "AI query"
        verbose_name_plural = "AI queries"

    def __str__(self) -> str:
        return self.question[:80]
