"""The books through the API: the journal and the tax report, as JSON or CSV (`.csv`)."""

from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import Allowed
from config.spreadsheet import csv_document
from invoicing import books
from invoicing.api import ERRORS

BOOKS = "invoicing.view_books"
PROVIDER_PARAMETER = OpenApiParameter(
    "provider", str, description="A platform user names the provider (its code); others read their own."
)
CSV_RESPONSE = OpenApiResponse(OpenApiTypes.STR, description="The same figures as CSV.")


class EntryOutput(serializers.Serializer):
    account = serializers.CharField(source="account.code")
    accountName = serializers.CharField(source="account.name")
    debit = serializers.DecimalField(max_digits=16, decimal_places=2)
    credit = serializers.DecimalField(max_digits=16, decimal_places=2)


class DayOutput(serializers.Serializer):
    date = serializers.DateField(source="day")
    entries = EntryOutput(many=True)
    debit = serializers.DecimalField(max_digits=16, decimal_places=2)
    credit = serializers.DecimalField(max_digits=16, decimal_places=2)


class JournalOutput(serializers.Serializer):
    provider = serializers.CharField()
    fromDate = serializers.DateField(source="first")
    toDate = serializers.DateField(source="last")
    days = DayOutput(many=True)
    totals = EntryOutput(many=True)
    debit = serializers.DecimalField(max_digits=16, decimal_places=2)
    credit = serializers.DecimalField(max_digits=16, decimal_places=2)


class JournalQuery(serializers.Serializer):
    # "from" is a Python keyword: the field is named in the query string only.
    provider = serializers.CharField(required=False, max_length=20)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["from"] = serializers.DateField(help_text="First day (YYYY-MM-DD).")
        self.fields["to"] = serializers.DateField(help_text="Last day, included (YYYY-MM-DD).")


def _csv(text: str, filename: str) -> HttpResponse:
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def journal_of(request: Request) -> books.Journal:
    query = JournalQuery(data=request.query_params)
    query.is_valid(raise_exception=True)
    values = query.validated_data
    provider = books.books_provider_for(user=request.user, code=values.get("provider"))
    return books.journal_for(provider=provider, first=values["from"], last=values["to"])


JOURNAL_PARAMETERS = [
    OpenApiParameter("from", OpenApiTypes.DATE, required=True, description="First day."),
    OpenApiParameter(
        "to", OpenApiTypes.DATE, required=True, description="Last day, included (at most 366 days)."
    ),
    PROVIDER_PARAMETER,
]


class JournalApi(APIView):
    permission_classes = [Allowed.to(BOOKS)]

    @extend_schema(
        parameters=JOURNAL_PARAMETERS,
        responses={200: JournalOutput, **ERRORS},
        summary="The journal: each day's debits and credits by account, balanced",
    )
    def get(self, request: Request) -> Response:
        return Response(JournalOutput(journal_of(request)).data)


class JournalCsvApi(APIView):
    permission_classes = [Allowed.to(BOOKS)]

    @extend_schema(
        parameters=JOURNAL_PARAMETERS,
        responses={(200, "text/csv"): CSV_RESPONSE, **ERRORS},
        summary="The journal as CSV (one row per day and account, then the totals)",
    )
    def get(self, request: Request) -> HttpResponse:
        journal = journal_of(request)
        return _csv(
            csv_document(books.journal_rows(journal)),
            f"journal-{journal.provider}-{journal.first}-{journal.last}.csv",
        )


class TaxRowOutput(serializers.Serializer):
    month = serializers.SerializerMethodField()
    authority = serializers.CharField()
    tax = serializers.CharField()
    bills = serializers.IntegerField()
    amount = serializers.DecimalField(max_digits=16, decimal_places=2)

    def get_month(self, row: books.TaxRow) -> str:
        return f"{row.month:%Y-%m}"


class TaxQuery(serializers.Serializer):
    year = serializers.IntegerField(min_value=2000, max_value=2100)
    provider = serializers.CharField(required=False, max_length=20)


TAX_PARAMETERS = [OpenApiParameter("year", int, required=True), PROVIDER_PARAMETER]


def tax_report_of(request: Request) -> tuple[str, int, list[books.TaxRow]]:
    query = TaxQuery(data=request.query_params)
    query.is_valid(raise_exception=True)
    values = query.validated_data
    provider = books.books_provider_for(user=request.user, code=values.get("provider"))
    return provider.code, values["year"], books.tax_report_for(provider=provider, year=values["year"])


class TaxReportApi(APIView):
    permission_classes = [Allowed.to(BOOKS)]

    @extend_schema(
        parameters=TAX_PARAMETERS,
        responses={200: TaxRowOutput(many=True), **ERRORS},
        summary="Taxes billed per authority and month",
    )
    def get(self, request: Request) -> Response:
        _, _, rows = tax_report_of(request)
        return Response(TaxRowOutput(rows, many=True).data)


class TaxReportCsvApi(APIView):
    permission_classes = [Allowed.to(BOOKS)]

    @extend_schema(
        parameters=TAX_PARAMETERS,
        responses={(200, "text/csv"): CSV_RESPONSE, **ERRORS},
        summary="Taxes billed per authority and month, as CSV",
    )
    def get(self, request: Request) -> HttpResponse:
        code, year, rows = tax_report_of(request)
        return _csv(csv_document(books.tax_rows(rows)), f"taxes-{code}-{year}.csv")
