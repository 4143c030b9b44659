from django.urls import path

from auditing import api

urlpatterns = [
    path("audit/invoices", api.AuditInvoicesApi.as_view(), name="audit-invoices"),
    path("audit/invoices/search", api.AuditInvoiceSearchApi.as_view(), name="audit-invoice-search"),
    path(
        "audit/invoices/<int:invoice_id>/history",
        api.InvoiceHistoryApi.as_view(),
        name="audit-invoice-history",
    ),
    path("audit/logs", api.AuditLogsApi.as_view(), name="audit-logs"),
    path("audit/logs/search", api.AuditLogSearchApi.as_view(), name="audit-log-search"),
    path("audit/query", api.AIQueryCollectionApi.as_view(), name="audit-query"),
    path("audit/query/<int:query_id>", api.AIQueryItemApi.as_view(), name="audit-query-item"),
]
