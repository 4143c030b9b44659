from django.contrib import admin

from auditing.models import AIQuery, AuditLog
from providers.admin import ReadOnlyAdmin


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    """Read-only: the trail is appended by the system and never edited."""

    list_display = ("created_at", "action", "object_type", "object_repr", "actor", "actor_role", "request_id")
    list_filter = ("action", "object_type", ("provider", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("actor", "provider")
    search_fields = ("object_repr", "object_id", "request_id", "actor__name")
    date_hierarchy = "created_at"


@admin.register(AIQuery)
class AIQueryAdmin(ReadOnlyAdmin):
    """Auditors' questions, the SQL they became and the verdicts (read-only)."""

    list_display = ("created_at", "asked_by", "question", "status", "generator", "milliseconds")
    list_filter = ("status", "generator", ("provider", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("asked_by", "provider")
    search_fields = ("question", "generated_sql", "reason")
    exclude = ("rows",)
