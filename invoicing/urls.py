from django.urls import path

from invoicing import api, credit_api, payment_files_api

urlpatterns = [
    path("invoices", api.InvoiceCollectionApi.as_view(), name="invoices"),
    path("invoices/my-invoices", api.MyInvoicesApi.as_view(), name="my-invoices"),
    path("invoices/my-created", api.MyCreatedInvoicesApi.as_view(), name="my-created-invoices"),
    path("invoices/provider", api.ProviderInvoicesApi.as_view(), name="provider-invoices"),
    path("invoices/<int:invoice_id>", api.InvoiceItemApi.as_view(), name="invoice"),
    path("invoices/<int:invoice_id>/pdf", api.InvoicePdfApi.as_view(), name="invoice-pdf"),
    path("bills", api.BillRetrievalApi.as_view(), name="bill-retrieval"),
    path("connections/<int:connection_id>/bill-preview", api.BillPreviewApi.as_view(), name="bill-preview"),
    path("payment-methods", api.PaymentMethodListApi.as_view(), name="payment-methods"),
    path("payments", api.PaymentCreateApi.as_view(), name="payments"),
    path("payments/list", api.PaymentListApi.as_view(), name="payment-list"),
    path("payments/<int:payment_id>", api.PaymentItemApi.as_view(), name="payment"),
    path("payments/<int:payment_id>/receipt", api.PaymentReceiptPdfApi.as_view(), name="payment-receipt"),
    path("payments/<int:payment_id>/reverse", api.PaymentReverseApi.as_view(), name="payment-reverse"),
    path(
        "payments/<int:payment_id>/reversal-receipt",
        api.PaymentReversalReceiptPdfApi.as_view(),
        name="payment-reversal-receipt",
    ),
    path("adjustments", api.AdjustmentCreateApi.as_view(), name="adjustments"),
    path("adjustments/<int:adjustment_id>", api.AdjustmentItemApi.as_view(), name="adjustment"),
    path(
        "adjustments/<int:adjustment_id>/receipt",
        api.AdjustmentReceiptPdfApi.as_view(),
        name="adjustment-receipt",
    ),
    path("credit-notes", credit_api.CreditNoteCollectionApi.as_view(), name="credit-notes"),
    path("credit-notes/<int:credit_note_id>", credit_api.CreditNoteItemApi.as_view(), name="credit-note"),
    path(
        "credit-notes/<int:credit_note_id>/pdf", credit_api.CreditNotePdfApi.as_view(), name="credit-note-pdf"
    ),
    path(
        "customers/<int:customer_id>/credit", credit_api.CustomerCreditApi.as_view(), name="customer-credit"
    ),
    path("credit-refunds", credit_api.CreditRefundCollectionApi.as_view(), name="credit-refunds"),
    path("credit-refunds/<int:refund_id>", credit_api.CreditRefundItemApi.as_view(), name="credit-refund"),
    path(
        "credit-refunds/<int:refund_id>/receipt",
        credit_api.CreditRefundReceiptPdfApi.as_view(),
        name="credit-refund-receipt",
    ),
    path("billing-runs", api.BillingRunCollectionApi.as_view(), name="billing-runs"),
    path("billing-runs/<int:run_id>", api.BillingRunItemApi.as_view(), name="billing-run"),
    path("payment-files", payment_files_api.PaymentFileCollectionApi.as_view(), name="payment-files"),
    path("payment-files/<int:file_id>", payment_files_api.PaymentFileItemApi.as_view(), name="payment-file"),
    path(
        "payment-files/<int:file_id>/results.csv",
        payment_files_api.PaymentFileResultsApi.as_view(),
        name="payment-file-results",
    ),
    path(
        "payment-file-formats",
        payment_files_api.PaymentFileFormatListApi.as_view(),
        name="payment-file-formats",
    ),
    path("messages", api.MessageListApi.as_view(), name="messages"),
    path("messages/<int:message_id>", api.MessageItemApi.as_view(), name="message"),
]
