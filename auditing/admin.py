from django.contrib import admin

from auditing.models import AuditLog
from providers.admin import ReadOnlyAdmin


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    """Read-only: the trail is appended by the system and never edited."""

    list_display = ("created_at", "action", "object_type", "object_repr", "actor", "actor_role", "request_id")
    list_filter = ("action", "object_type", ("provider", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("actor", "provider")
    search_fields = ("object_repr", "object_id", "request_id", "actor__name")
    date_hierarchy = "created_at"
