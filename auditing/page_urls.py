from django.urls import path

from auditing import pages

urlpatterns = [
    path("log", pages.audit_log, name="audit-log"),
    path("invoices", pages.invoice_search, name="audit-invoice-find"),
    path("invoices/<int:invoice_id>/history", pages.invoice_history, name="invoice-history"),
    path("questions", pages.ai_query, name="ai-query"),
    path("questions/<int:query_id>", pages.ai_query_detail, name="ai-query-detail"),
    path("pricing", pages.pricing_history, name="pricing-history"),
]
