from django.contrib import admin
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest

from auditing.models import AIQuery, AuditLog, ChainHead
from providers.admin import ReadOnlyAdmin, ReadOnlyMixin
from providers.models import Provider
from providers.tenancy import scope_to_provider


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    """Read-only: the trail is appended by the system and never edited."""

    list_display = ("created_at", "action", "object_type", "object_repr", "actor", "actor_role", "request_id")
    list_filter = ("action", "object_type", ("provider", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("actor", "provider")
    search_fields = ("object_repr", "object_id", "request_id", "actor__name")
    date_hierarchy = "created_at"


@admin.register(ChainHead)
class ChainHeadAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """The last hash of each chain of the trail, to compare with what `audit_verify` reads."""

    view_permission = "auditing.view_auditlog"
    list_display = ("chain", "provider_code", "lane", "last_hash")
    search_fields = ("last_hash",)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # A chain is numbered by its provider's id (0: the platform's), not linked to it.
        heads = scope_to_provider(super().get_queryset(request), request.user, field="chain")
        code = Provider.objects.filter(pk=OuterRef("chain")).values("code")
        return heads.annotate(provider_code=Subquery(code))

    @admin.display(description="provider", ordering="provider_code", empty_value="platform")
    def provider_code(self, head: ChainHead) -> str | None:
        return head.provider_code


@admin.register(AIQuery)
class AIQueryAdmin(ReadOnlyAdmin):
    """Auditors' questions, the SQL they became and the verdicts (read-only)."""

    list_display = ("created_at", "asked_by", "question", "status", "generator", "milliseconds")
    list_filter = ("status", "generator", ("provider", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("asked_by", "provider")
    search_fields = ("question", "generated_sql", "reason")
    exclude = ("rows",)
