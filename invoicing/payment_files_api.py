"""Bank payment files: upload one (its rows posted by the workers), follow its progress, download its
results. Thin: parse, look up through a selector, call one service, render."""

import csv
import re
from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import Allowed
from config.errors import DomainError
from config.queue import require_queue
from config.spreadsheet import CsvEcho, csv_text
from invoicing import selectors, services
from invoicing.api import ERRORS, MONEY, QUEUE_DOWN
from invoicing.models import PaymentFile, PaymentFileFormat, PaymentFileStatus, RowOutcome
from invoicing.services.payment_files import MAX_FILE_BYTES, MAX_ROWS
from invoicing.tasks import dispatch_payment_file


class PaymentFileOutput(serializers.Serializer):
    fileId = serializers.IntegerField(source="pk")
    name = serializers.CharField()
    format = serializers.CharField(source="file_format.name")
    status = serializers.ChoiceField(choices=PaymentFileStatus.choices)
    total = serializers.IntegerField(help_text="Rows in the file.")
    done = serializers.IntegerField(help_text="Rows posted, found duplicate or refused so far.")
    percent = serializers.IntegerField()
    posted = serializers.IntegerField()
    duplicates = serializers.IntegerField(help_text="Rows whose bank reference was posted before.")
    refused = serializers.IntegerField()
    postedAmount = serializers.DecimalField(source="posted_amount", **MONEY)
    uploadedBy = serializers.CharField(source="uploaded_by.name")
    uploadedAt = serializers.DateTimeField(source="uploaded_at")
    finishedAt = serializers.DateTimeField(source="finished_at", allow_null=True)
    sha256 = serializers.CharField(help_text="Of the bytes uploaded: the same file loaded twice shows.")


class PaymentFileFormatOutput(serializers.Serializer):
    formatId = serializers.IntegerField(source="pk")
    name = serializers.CharField()
    columns = serializers.DictField(
        child=serializers.CharField(), help_text="Each field's column header: bill_number, amount, ..."
    )
    dateFormat = serializers.CharField(source="date_format")
    decimalComma = serializers.BooleanField(source="decimal_comma")
    delimiter = serializers.CharField()
    defaultMethod = serializers.CharField(source="default_method.code", default=None, allow_null=True)


def format_of(user: Any, value: str) -> PaymentFileFormat:
    """A file format of the caller's provider, by id or by name."""
    formats = selectors.payment_file_formats_for(user=user)
    by_id = re.fullmatch(r"[0-9]{1,9}", value)
    found = formats.filter(pk=int(value)).first() if by_id else formats.filter(name=value).first()
    if found is None:
        names = (
            ", ".join(f"{row.pk} ({row.name})" for row in formats) or "none yet (an administrator adds them)"
        )
        raise DomainError(
            _("No file format %(value)s; the formats are: %(names)s.")
            % {"value": repr(value), "names": names},
            field="format",
        )
    return found


def payment_file_receive(request: Request, upload: Any, format_value: str) -> PaymentFile:
    """What the API and the upload page do with a file: checked at the edge, stored with its rows, its
    chunks sent once stored."""
    if upload is None:
        raise DomainError(_("Attach the bank's CSV file in the field 'file'."), field="file")
    if not format_value:
        raise DomainError(_("Name the file's format (its id or name)."), field="format")
    file_format = format_of(request.user, format_value)
    if upload.size > MAX_FILE_BYTES:
        raise services.PaymentFileTooLarge(
            _("Upload at most %(max_file_bytes)s MB at a time (split the file).")
            % {"max_file_bytes": MAX_FILE_BYTES // 2**20},
            field="file",
        )
    require_queue("Posting a payment file")
    payment_file = services.payment_file_upload(
        file_format=file_format,
        name=upload.name,
        content=upload.read(),
        uploaded_by=request.user,
        role=request.user.active_role,
    )
    dispatch_payment_file(payment_file)
    return payment_file


class PaymentFileCollectionApi(generics.ListAPIView):
    serializer_class = PaymentFileOutput
    parser_classes = [MultiPartParser]
    queryset = PaymentFile.objects.none()  # for the schema; requests use get_queryset

    def get_permissions(self) -> list:
        perm = "invoicing.add_paymentfile" if self.request.method == "POST" else "invoicing.view_paymentfile"
        return [Allowed.to(perm)()]

    def get_queryset(self) -> QuerySet[PaymentFile]:
        return selectors.payment_file_list_for(user=self.request.user)

    @extend_schema(
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "format": {"type": "string", "description": "The file format's id or name."},
                },
                "required": ["file", "format"],
            }
        },
        responses={
            202: PaymentFileOutput,
            413: OpenApiResponse(description="The file is over the size limit."),
            **ERRORS,
            **QUEUE_DOWN,
        },
        summary="Upload a bank's payment file: each row is posted as a payment",
        description="A CSV file (UTF-8) laid out as its format says (GET /api/payment-file-formats). The rows "
        "are stored, then posted by the workers: each through the payment service, dated the row's day; a "
        "row whose bank reference was posted before is a duplicate; a row that names no bill you may take "
        "payments on, would pay more than is owed or fails another check is refused with its reason. "
        f"At most {MAX_FILE_BYTES // 2**20} MB and {MAX_ROWS:,} rows. A mapped column missing is a 400 that "
        "names it.",
    )
    def post(self, request: Request) -> Response:
        payment_file = payment_file_receive(
            request, request.FILES.get("file"), str(request.data.get("format", "")).strip()
        )
        payment_file = selectors.payment_file_get_for(user=request.user, file_id=payment_file.pk)
        return Response(PaymentFileOutput(payment_file).data, status=status.HTTP_202_ACCEPTED)


class PaymentFileItemApi(APIView):
    permission_classes = [Allowed.to("invoicing.view_paymentfile")]

    @extend_schema(
        responses={200: PaymentFileOutput, **ERRORS}, summary="A payment file's progress and totals"
    )
    def get(self, request: Request, file_id: int) -> Response:
        return Response(
            PaymentFileOutput(selectors.payment_file_get_for(user=request.user, file_id=file_id)).data
        )


class PaymentFileFormatListApi(generics.ListAPIView):
    permission_classes = [Allowed.to("invoicing.add_paymentfile")]
    serializer_class = PaymentFileFormatOutput
    pagination_class = None
    queryset = PaymentFileFormat.objects.none()  # for the schema; requests use get_queryset

    def get_queryset(self) -> QuerySet[PaymentFileFormat]:
        return selectors.payment_file_formats_for(user=self.request.user).select_related("default_method")


RESULT_HEADER = (
    "line",
    "bill number",
    "connection number",
    "amount",
    "date",
    "method",
    "bank reference",
    "outcome",
    "receipt number",
    "reason",
)


def results_csv(payment_file: PaymentFile, *, outcome: str = "") -> Iterator[str]:
    """One row per row of the file with its outcome (a duplicate's receipt: the earlier payment's), then
    the totals. What came from the file is written so a spreadsheet never runs it as a formula."""
    writer = csv.writer(CsvEcho())
    yield writer.writerow(RESULT_HEADER)
    rows = selectors.payment_file_rows(payment_file)
    if outcome:
        rows = rows.filter(outcome=outcome)
    for row in rows.iterator(chunk_size=2000):
        yield writer.writerow(
            (
                row.line,
                csv_text(row.bill_number),
                csv_text(row.connection_number),
                "" if row.amount is None else row.amount,
                "" if row.paid_on is None else row.paid_on.isoformat(),
                row.method.code if row.method else "",
                csv_text(row.reference),
                row.outcome,
                row.payment.receipt_number if row.payment else "",
                csv_text(row.reason),
            )
        )
    yield writer.writerow(())
    yield writer.writerow(("totals", "rows", "amount posted"))
    for label, count in (
        ("posted", payment_file.posted),
        ("duplicate", payment_file.duplicates),
        ("refused", payment_file.refused),
        ("not posted yet", payment_file.total - payment_file.done),
        ("all", payment_file.total),
    ):
        yield writer.writerow((label, count, payment_file.posted_amount if label == "posted" else ""))


def results_response(payment_file: PaymentFile, *, outcome: str = "") -> StreamingHttpResponse:
    response = StreamingHttpResponse(results_csv(payment_file, outcome=outcome), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="payment-file-{payment_file.pk}-results.csv"'
    return response


def outcome_of(value: str) -> str:
    if value and value not in RowOutcome.values:
        raise DomainError(
            _("outcome is one of: %(values)s.") % {"values": ", ".join(RowOutcome.values)}, field="outcome"
        )
    return value


class PaymentFileResultsApi(APIView):
    permission_classes = [Allowed.to("invoicing.view_paymentfile")]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "outcome", str, enum=RowOutcome.values, description="Only the rows of this outcome."
            )
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The rows' results, then totals."
            ),
            **ERRORS,
        },
        summary="A payment file's results as CSV: each row posted (with its receipt), duplicate or refused",
    )
    def get(self, request: Request, file_id: int) -> StreamingHttpResponse:
        payment_file = selectors.payment_file_get_for(user=request.user, file_id=file_id)
        return results_response(payment_file, outcome=outcome_of(request.query_params.get("outcome", "")))
