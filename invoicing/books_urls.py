from django.urls import path

from invoicing import books_api

urlpatterns = [
    path("books/journal", books_api.JournalApi.as_view(), name="api-journal"),
    path("books/journal.csv", books_api.JournalCsvApi.as_view(), name="api-journal-csv"),
    path("books/tax-report", books_api.TaxReportApi.as_view(), name="api-tax-report"),
    path("books/tax-report.csv", books_api.TaxReportCsvApi.as_view(), name="api-tax-report-csv"),
]
