"""Connections, meter readings and the usage calculator (the bill preview is invoicing's)."""

import csv
import io
from decimal import Decimal
from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import Allowed
from billing import services
from billing.models import MeterExchange, MeterReading
from billing.rating import RatedBill, as_json
from billing.selectors import (
    connection_get_for,
    connection_list_for,
    meter_exchange_list_for,
    usage_estimate,
)
from config.errors import DomainError, NotFound
from config.parsers import NUL, NUL_MESSAGE, SafeJSONParser
from providers.models import ConnectionType

KWH = {"max_digits": 14, "decimal_places": 4}
MAX_UPLOAD_ROWS = 50_000
MAX_UPLOAD_BYTES = 10 * 2**20


class ReadingTimeField(serializers.DateTimeField):
    """A date and time DRF can always interpret: out-of-range dates are a 400, not an overflow."""

    def to_internal_value(self, value: Any) -> Any:
        try:
            return super().to_internal_value(value)
        except OverflowError:
            self.fail("invalid", format="YYYY-MM-DDThh:mm[:ss][+HH:MM]")


def bill_body(bill: RatedBill) -> dict:
    return {
        "lines": [
            {"kind": line.kind, "label": line.label, "code": line.code, "amount": f"{line.amount:f}"}
            for line in bill.lines
        ],
        "energyCharge": f"{bill.energy:f}",
        "taxTotal": f"{bill.taxes:f}",
        "fixedTotal": f"{bill.fixed:f}",
        "subsidyTotal": f"{bill.subsidies:f}",
        "currentCharges": f"{bill.current_charges:f}",
        "arrears": f"{bill.arrears:f}",
        "payableBeforeDue": f"{bill.payable_before_due:f}",
        "lateSurcharge": f"{bill.late_surcharge:f}",
        "payableAfterDue": f"{bill.payable_after_due:f}",
        "trace": as_json(bill.trace),
    }


BILL_RESPONSE = OpenApiResponse(
    description="Lines, totals (decimal strings) and the trace: billing days, units, averages, slabs, minimums, "
    "tax base and subsidy tests."
)


def _callers_provider(request: Request) -> Any:
    if request.user.provider is None:
        raise DomainError(
            "Sign in as a user of a provider: this works on one provider's connections and prices."
        )
    return request.user.provider


class ConnectionOutput(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    connectionId = serializers.CharField(source="number")
    customerId = serializers.CharField(source="customer.number", help_text="As printed, e.g. LHR-RES-0001.")
    customerUserId = serializers.IntegerField(
        source="customer.user_id",
        help_text="The customer's user id: what POST /api/invoices takes as customerId.",
    )
    customerName = serializers.CharField(source="customer.name")
    connectionType = serializers.CharField(source="connection_type.code")
    meterNumber = serializers.CharField(source="meter_number")
    meterType = serializers.CharField(source="meter_type")
    division = serializers.CharField()
    subdivision = serializers.CharField()
    installationDate = serializers.DateField(source="installation_date", allow_null=True)
    status = serializers.CharField()


class ConnectionListApi(generics.ListAPIView):
    permission_classes = [Allowed.to("billing.view_serviceconnection")]
    serializer_class = ConnectionOutput

    def get_queryset(self) -> Any:
        return connection_list_for(user=self.request.user)


class ReadingOutput(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    takenAt = serializers.DateTimeField(source="taken_at")
    importPeak = serializers.DecimalField(source="import_peak", **KWH)
    importOffPeak = serializers.DecimalField(source="import_off_peak", **KWH)
    exportPeak = serializers.DecimalField(source="export_peak", **KWH)
    exportOffPeak = serializers.DecimalField(source="export_off_peak", **KWH)
    meterReplaced = serializers.BooleanField(source="meter_replaced")
    source = serializers.CharField()


class ReadingInput(serializers.Serializer):
    takenAt = ReadingTimeField()
    importPeak = serializers.DecimalField(**KWH, min_value=0)
    importOffPeak = serializers.DecimalField(**KWH, min_value=0)
    exportPeak = serializers.DecimalField(**KWH, min_value=0, default=Decimal("0"))
    exportOffPeak = serializers.DecimalField(**KWH, min_value=0, default=Decimal("0"))
    meterReplaced = serializers.BooleanField(default=False, help_text="A new meter: registers start again.")


class ConnectionReadingsApi(APIView):
    def get_permissions(self) -> list:
        perm = "billing.view_meterreading" if self.request.method == "GET" else "billing.add_meterreading"
        return [Allowed.to(perm)()]

    @extend_schema(responses={200: ReadingOutput(many=True)}, summary="A connection's readings, oldest first")
    def get(self, request: Request, connection_id: int) -> Response:
        connection = connection_get_for(user=request.user, connection_id=connection_id)
        return Response(ReadingOutput(connection.readings.all(), many=True).data)

    @extend_schema(request=ReadingInput, responses={201: ReadingOutput}, summary="Record one meter reading")
    def post(self, request: Request, connection_id: int) -> Response:
        connection = connection_get_for(user=request.user, connection_id=connection_id)
        data = ReadingInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        reading = services.reading_record(
            connection=connection,
            taken_at=values["takenAt"],
            registers={
                "import_peak": values["importPeak"],
                "import_off_peak": values["importOffPeak"],
                "export_peak": values["exportPeak"],
                "export_off_peak": values["exportOffPeak"],
            },
            meter_replaced=values["meterReplaced"],
            recorded_by=request.user,
        )
        return Response(ReadingOutput(reading).data, status=status.HTTP_201_CREATED)


class RegistersField(serializers.Serializer):
    importPeak = serializers.DecimalField(**KWH, min_value=0)
    importOffPeak = serializers.DecimalField(**KWH, min_value=0)
    exportPeak = serializers.DecimalField(**KWH, min_value=0, default=Decimal("0"))
    exportOffPeak = serializers.DecimalField(**KWH, min_value=0, default=Decimal("0"))


def _registers(values: dict) -> dict[str, Decimal]:
    return {
        "import_peak": values["importPeak"],
        "import_off_peak": values["importOffPeak"],
        "export_peak": values["exportPeak"],
        "export_off_peak": values["exportOffPeak"],
    }


class MeterExchangeOutput(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    connectionId = serializers.CharField(source="connection.number")
    exchangedAt = serializers.DateTimeField(source="exchanged_at")
    oldMeterNumber = serializers.CharField(source="old_meter_number")
    oldMeterType = serializers.CharField(source="old_meter_type")
    newMeterNumber = serializers.CharField(source="new_meter_number")
    newMeterType = serializers.CharField(source="new_meter_type")
    oldFinal = serializers.SerializerMethodField(help_text="The old meter's registers when taken out, kWh.")
    newFirst = serializers.SerializerMethodField(help_text="The new meter's registers when put in, kWh.")
    reason = serializers.CharField()
    recordedBy = serializers.CharField(source="recorded_by.name", default=None)
    recordedAt = serializers.DateTimeField(source="recorded_at")

    @extend_schema_field(RegistersField)
    def get_oldFinal(self, exchange: MeterExchange) -> dict:
        return self._registers(exchange, "final")

    @extend_schema_field(RegistersField)
    def get_newFirst(self, exchange: MeterExchange) -> dict:
        return self._registers(exchange, "first")

    @staticmethod
    def _registers(exchange: MeterExchange, prefix: str) -> dict:
        names = ("importPeak", "importOffPeak", "exportPeak", "exportOffPeak")
        return {
            name: f"{getattr(exchange, f'{prefix}_{register}'):f}"
            for name, register in zip(names, MeterReading.REGISTERS, strict=True)
        }


class MeterExchangeInput(serializers.Serializer):
    exchangedAt = ReadingTimeField(help_text="When the old meter was read last and the new one first.")
    oldFinal = RegistersField(help_text="The old meter's registers when it was taken out.")
    newFirst = RegistersField(help_text="The new meter's registers when it was put in.")
    newMeterNumber = serializers.CharField(max_length=40)
    newMeterType = serializers.CharField(max_length=60, required=False, default="", allow_blank=True)
    reason = serializers.CharField(max_length=300)


class ConnectionMeterExchangesApi(APIView):
    """A connection's meter exchanges: the old meter's final reading and the new meter's first."""

    def get_permissions(self) -> list:
        perm = "billing.view_meterexchange" if self.request.method == "GET" else "billing.add_meterexchange"
        return [Allowed.to(perm)()]

    @extend_schema(
        responses={200: MeterExchangeOutput(many=True)},
        summary="A connection's meter exchanges, oldest first",
    )
    def get(self, request: Request, connection_id: int) -> Response:
        connection = connection_get_for(user=request.user, connection_id=connection_id)
        exchanges = meter_exchange_list_for(user=request.user).filter(connection=connection)
        return Response(MeterExchangeOutput(exchanges, many=True).data)

    @extend_schema(
        request=MeterExchangeInput,
        responses={
            201: MeterExchangeOutput,
            409: OpenApiResponse(description="The connection already has a reading or an exchange then."),
        },
        summary="Record a meter exchange: the old meter's final reading and the new meter's first, at one moment",
        description="Refused with the reason when the old meter's final registers are below the reading "
        "before, the new meter's first above a reading after, the moment is in the future, or the "
        "connection is not active. The connection takes the new meter's number.",
    )
    def post(self, request: Request, connection_id: int) -> Response:
        connection = connection_get_for(user=request.user, connection_id=connection_id)
        data = MeterExchangeInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        exchange = services.meter_exchange_record(
            connection=connection,
            at=values["exchangedAt"],
            old_final=_registers(values["oldFinal"]),
            new_first=_registers(values["newFirst"]),
            new_meter_number=values["newMeterNumber"],
            new_meter_type=values["newMeterType"],
            reason=values["reason"],
            recorded_by=request.user,
        )
        return Response(MeterExchangeOutput(exchange).data, status=status.HTTP_201_CREATED)


class ReadingUploadApi(APIView):
    """Many readings at once: a CSV file (field `file`) or a JSON list of rows."""

    permission_classes = [Allowed.to("billing.add_meterreading")]
    parser_classes = [MultiPartParser, SafeJSONParser]

    @extend_schema(
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
            },
            "application/json": {"type": "array", "items": {"type": "object"}},
        },
        responses={
            200: OpenApiResponse(description="accepted, unchanged, and refused rows with their reasons")
        },
        summary="Upload readings (columns: connection_id, timestamp, import_peak, import_off_peak, "
        "export_peak, export_off_peak, meter_replaced)",
    )
    def post(self, request: Request) -> Response:
        provider = _callers_provider(request)
        rows = self._rows(request)
        report = services.readings_upload(provider=provider, rows=rows, recorded_by=request.user)
        return Response(
            {"accepted": report.accepted, "unchanged": report.unchanged, "refused": report.refused}
        )

    def _rows(self, request: Request) -> list[dict]:
        upload = request.FILES.get("file")
        if upload is not None:
            if upload.size > MAX_UPLOAD_BYTES:
                raise DomainError(f"Upload at most {MAX_UPLOAD_BYTES // 2**20} MB at a time.", field="file")
            try:
                text = upload.read().decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise DomainError("The file is not UTF-8 text; save it as CSV UTF-8.", field="file") from exc
            if NUL in text:
                raise DomainError(f"The file contains a NUL character. {NUL_MESSAGE}", field="file")
            try:
                rows = list(csv.DictReader(io.StringIO(text)))
            except csv.Error as exc:
                raise DomainError(f"The file is not valid CSV: {exc}.", field="file") from exc
        elif isinstance(request.data, list):
            rows = request.data
        else:
            raise DomainError(
                "Send a CSV file in the field 'file', or a JSON list of readings.", field="file"
            )
        if not rows:
            raise DomainError("The upload has no rows.", field="file")
        if len(rows) > MAX_UPLOAD_ROWS:
            raise DomainError(f"Upload at most {MAX_UPLOAD_ROWS:,} rows at a time.", field="file")
        if not all(isinstance(row, dict) for row in rows):
            raise DomainError("Each reading must be an object with named fields.", field="file")
        return rows


class CalculatorApi(APIView):
    permission_classes = [Allowed.to("billing.use_calculator")]

    class CalculatorInput(serializers.Serializer):
        connectionType = serializers.CharField(max_length=20)
        peakKwh = serializers.DecimalField(**KWH, min_value=0)
        offPeakKwh = serializers.DecimalField(**KWH, min_value=0)
        days = serializers.DecimalField(
            max_digits=6, decimal_places=2, min_value=1, max_value=62, default=Decimal(30)
        )

    @extend_schema(
        request=CalculatorInput,
        responses={200: BILL_RESPONSE, 404: OpenApiResponse(description="No such connection type.")},
        summary="What a month of this usage would cost on today's prices",
    )
    def post(self, request: Request) -> Response:
        data = self.CalculatorInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        provider = _callers_provider(request)
        connection_type = ConnectionType.objects.filter(
            provider=provider, code=values["connectionType"]
        ).first()
        if connection_type is None:
            raise NotFound(f"No connection type {values['connectionType']}.", field="connectionType")
        bill = usage_estimate(
            provider=provider,
            connection_type=connection_type,
            peak_kwh=values["peakKwh"],
            off_peak_kwh=values["offPeakKwh"],
            days=values["days"],
        )
        return Response(bill_body(bill))
