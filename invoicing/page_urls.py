from django.urls import path

from invoicing import pages, payment_file_pages

urlpatterns = [
    path("dashboard", pages.dashboard, name="dashboard"),
    path("bills/find", pages.bill_search, name="bill-search"),
    path("bills/<int:invoice_id>", pages.bill_detail, name="bill-detail"),
    path("payments/new", pages.payment_new, name="payment-new"),
    path("payments/<int:payment_id>", pages.payment_done, name="payment-done"),
    path("payments/<int:payment_id>/reverse", pages.payment_reverse, name="payment-reverse-page"),
    path("adjustments/new", pages.adjustment_new, name="adjustment-new"),
    path("adjustments/<int:adjustment_id>", pages.adjustment_done, name="adjustment-done"),
    path("invoices", pages.invoices_all, name="invoices-all"),
    path("invoices/mine", pages.invoices_mine, name="invoices-mine"),
    path("invoices/new", pages.invoice_new, name="invoice-new"),
    path("invoices/<int:invoice_id>/edit", pages.invoice_edit, name="invoice-edit"),
    path("billing-runs", pages.run_list, name="run-list"),
    path("billing-runs/<int:run_id>", pages.run_detail, name="run-detail"),
    path("payment-files", payment_file_pages.payment_file_list, name="payment-file-list"),
    path("payment-files/<int:file_id>", payment_file_pages.payment_file_detail, name="payment-file-detail"),
    path("messages", pages.message_list, name="message-list"),
    path("customers/<int:customer_id>/invite", pages.customer_invite, name="customer-invite-page"),
]
