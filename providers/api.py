"""Providers and their price schedule: the seed's admin and audit endpoints, and the full schedule."""

from datetime import date
from decimal import Decimal
from typing import Any

import django_filters
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import Allowed
from config.errors import NotFound
from config.pagination import PagePagination
from providers import services
from providers.models import (
    Bucket,
    DatedRow,
    FixedCharge,
    Provider,
    SlabMode,
    Subsidy,
    SubsidyBasis,
    TariffRow,
    TaxRule,
)
from providers.selectors import (
    authorities_of,
    connection_types_of,
    pricing_history_for,
    provider_get_for,
    schedule_rows,
)

MONEY = {"max_digits": 14, "decimal_places": 2}
RATE = {"max_digits": 14, "decimal_places": 4}
DATE_PARAM = OpenApiParameter(
    "date", date, description="The day the schedule is in force on (default today)."
)


class UserRef(serializers.Serializer):
    userId = serializers.IntegerField(source="pk")
    name = serializers.CharField()


class ProviderOutput(serializers.Serializer):
    providerId = serializers.IntegerField(source="pk")
    code = serializers.CharField()
    name = serializers.CharField()
    city = serializers.CharField()
    email = serializers.EmailField()
    phoneNumber = serializers.CharField(source="phone")
    currency = serializers.CharField()
    dueDays = serializers.IntegerField(source="due_days")
    lateSurchargePercent = serializers.DecimalField(
        source="late_surcharge_percent", max_digits=5, decimal_places=2
    )
    reconnectionFee = serializers.DecimalField(
        source="reconnection_fee",
        max_digits=14,
        decimal_places=2,
        help_text="Charged on the next bill of a connection reconnected after a disconnection.",
    )
    isActive = serializers.BooleanField(source="is_active")
    estimateMissingReadings = serializers.BooleanField(
        source="estimate_missing_readings",
        help_text="A month without a meter reading is billed on an estimate, trued up by the next reading.",
    )
    allowOverpayment = serializers.BooleanField(
        source="allow_overpayment",
        help_text="A payment above what is owed keeps its excess as the customer's credit; off: refused.",
    )
    currentKwhPrice = serializers.SerializerMethodField(
        help_text="The flat price in force today; null if none."
    )
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")

    def get_currentKwhPrice(self, provider: Provider) -> str | None:
        row = services.flat_price_in_force(provider=provider, day=timezone.localdate())
        return None if row is None else str(row.rate)


class DatedRowOutput(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    connectionType = serializers.CharField(source="connection_type.code", allow_null=True, default=None)
    validFrom = serializers.DateField(source="valid_from")
    validTo = serializers.DateField(
        source="valid_to", allow_null=True, help_text="First day no longer in force; null: open."
    )
    createdBy = UserRef(source="created_by", allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at")
    closedBy = UserRef(source="closed_by", allow_null=True)
    closedAt = serializers.DateTimeField(source="closed_at", allow_null=True)


class TariffOutput(DatedRowOutput):
    pricingId = serializers.IntegerField(source="pk")
    providerId = serializers.IntegerField(source="provider_id")
    code = serializers.CharField()
    description = serializers.CharField()
    bucket = serializers.ChoiceField(choices=Bucket.choices)
    mode = serializers.ChoiceField(choices=SlabMode.choices)
    slab = serializers.IntegerField()
    bandLow = serializers.DecimalField(source="band_low", **RATE)
    bandHigh = serializers.DecimalField(source="band_high", allow_null=True, **RATE)
    kwhPrice = serializers.DecimalField(source="rate", **RATE)
    minUnits = serializers.DecimalField(source="min_units", **RATE)
    minAmount = serializers.DecimalField(source="min_amount", **MONEY)
    superseded = serializers.BooleanField(
        read_only=True,
        help_text="Corrected by another change dated the same day (validTo equals validFrom): in force on "
        "no whole day; bills issued between createdAt and closedAt were rated with it and keep it.",
    )


class TaxOutput(DatedRowOutput):
    name = serializers.CharField()
    authority = serializers.CharField(source="authority.code")
    rate = serializers.DecimalField(max_digits=7, decimal_places=4, help_text="A fraction: 0.17 is 17%.")


class FixedChargeOutput(DatedRowOutput):
    name = serializers.CharField()
    authority = serializers.CharField(source="authority.code")
    amount = serializers.DecimalField(**MONEY)


class SubsidyOutput(DatedRowOutput):
    code = serializers.CharField()
    description = serializers.CharField()
    payer = serializers.CharField(source="payer.code")
    basis = serializers.ChoiceField(choices=SubsidyBasis.choices)
    bandLow = serializers.DecimalField(source="band_low", allow_null=True, **RATE)
    bandHigh = serializers.DecimalField(source="band_high", allow_null=True, **RATE)
    incomeCeiling = serializers.DecimalField(source="income_ceiling", allow_null=True, **MONEY)
    ratePerUnit = serializers.DecimalField(source="rate_per_unit", allow_null=True, **RATE)
    percent = serializers.DecimalField(max_digits=5, decimal_places=2, allow_null=True)


class ConnectionTypeOutput(serializers.Serializer):
    code = serializers.CharField()
    description = serializers.CharField()
    sanctionedLoadKw = serializers.DecimalField(
        source="sanctioned_load_kw", max_digits=10, decimal_places=2, allow_null=True
    )


# ---- the seed's provider endpoints -------------------------------------------------------------


class ProviderCreateApi(APIView):
    permission_classes = [Allowed.to("providers.add_provider")]

    class ProviderCreateInput(serializers.Serializer):
        code = serializers.RegexField(r"^[A-Za-z][A-Za-z0-9]{1,11}$", help_text="Printed in invoice numbers.")
        name = serializers.CharField(max_length=200)
        city = serializers.CharField(max_length=100)
        email = serializers.EmailField()
        phoneNumber = serializers.CharField(max_length=30, required=False, default="", allow_blank=True)
        currency = serializers.RegexField(r"^[A-Za-z]{3}$", required=False, default="PKR")
        dueDays = serializers.IntegerField(min_value=1, max_value=90, required=False, default=10)
        lateSurchargePercent = serializers.DecimalField(
            max_digits=5,
            decimal_places=2,
            min_value=0,
            max_value=100,
            required=False,
            default=Decimal("10.00"),
        )
        reconnectionFee = serializers.DecimalField(
            max_digits=14,
            decimal_places=2,
            min_value=0,
            required=False,
            default=Decimal("0.00"),
            help_text="Charged on the next bill of a connection reconnected after a disconnection.",
        )
        isActive = serializers.BooleanField(required=False, default=True)
        kwhPrice = serializers.DecimalField(
            **RATE, min_value=0, required=False, help_text="The first flat price."
        )

    @extend_schema(request=ProviderCreateInput, responses={201: ProviderOutput}, summary="Create a provider")
    def post(self, request: Request) -> Response:
        data = self.ProviderCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        provider = services.provider_onboard(
            code=values["code"],
            name=values["name"],
            city=values["city"],
            email=values["email"],
            phone=values["phoneNumber"],
            currency=values["currency"],
            due_days=values["dueDays"],
            late_surcharge_percent=values["lateSurchargePercent"],
            reconnection_fee=values["reconnectionFee"],
            is_active=values["isActive"],
            kwh_price=values.get("kwhPrice"),
            created_by=request.user,
        )
        return Response(ProviderOutput(provider).data, status=status.HTTP_201_CREATED)


class ProviderDetailApi(APIView):
    permission_classes = [Allowed.to("providers.view_provider")]

    @extend_schema(responses={200: ProviderOutput}, summary="A provider, with its price in force today")
    def get(self, request: Request, provider_id: int) -> Response:
        return Response(ProviderOutput(provider_get_for(user=request.user, provider_id=provider_id)).data)


class ProviderPriceApi(APIView):
    permission_classes = [Allowed.to("providers.change_tariffrow")]

    class PriceInput(serializers.Serializer):
        kwhPrice = serializers.DecimalField(**RATE, min_value=0)
        validFrom = serializers.DateField(required=False, help_text="Default today; may be in the future.")

    @extend_schema(
        request=PriceInput,
        responses={200: TariffOutput},
        summary="Change the flat price per kWh: closes the open row, opens the next",
        description="A second change dated the same day corrects the first: the row the first opened "
        "is closed that same day (superseded) and stays in the pricing history beside its replacement. "
        "Bills issued before the correction keep the price they were rated with.",
    )
    def put(self, request: Request, provider_id: int) -> Response:
        provider = provider_get_for(user=request.user, provider_id=provider_id)
        data = self.PriceInput(data=request.data)
        data.is_valid(raise_exception=True)
        row = services.provider_price_set(
            provider=provider,
            price=data.validated_data["kwhPrice"],
            valid_from=data.validated_data.get("validFrom"),
            changed_by=request.user,
        )
        return Response(TariffOutput(row).data)


class PricingHistoryFilter(django_filters.FilterSet):
    connectionType = django_filters.CharFilter(field_name="connection_type__code")
    bucket = django_filters.ChoiceFilter(choices=Bucket.choices)
    changedSince = django_filters.DateFilter(field_name="valid_from", lookup_expr="gte")
    changedBefore = django_filters.DateFilter(field_name="valid_from", lookup_expr="lt")

    class Meta:
        model = TariffRow
        fields: list[str] = []


class PricingHistoryApi(generics.ListAPIView):
    """Every price the caller's provider ever had, newest first, with who set and who closed it."""

    permission_classes = [Allowed.to("providers.view_tariffrow")]
    serializer_class = TariffOutput
    filterset_class = PricingHistoryFilter

    def get_queryset(self) -> Any:
        return pricing_history_for(user=self.request.user)


# ---- the full price schedule ------------------------------------------------------------------


def _day(request: Request) -> date:
    raw = request.query_params.get("date")
    if raw is None:
        return timezone.localdate()
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise serializers.ValidationError({"date": [_("Use a date like 2024-07-31.")]}) from exc


class ScheduleOutput(serializers.Serializer):
    providerId = serializers.IntegerField()
    date = serializers.DateField()
    connectionTypes = ConnectionTypeOutput(many=True)
    tariffs = TariffOutput(many=True)
    taxes = TaxOutput(many=True)
    fixedCharges = FixedChargeOutput(many=True)
    subsidies = SubsidyOutput(many=True)


class ScheduleApi(APIView):
    permission_classes = [Allowed.to("providers.view_tariffrow")]

    @extend_schema(
        parameters=[DATE_PARAM],
        responses={200: ScheduleOutput},
        summary="The whole schedule in force on a date",
    )
    def get(self, request: Request, provider_id: int) -> Response:
        provider = provider_get_for(user=request.user, provider_id=provider_id)
        day = _day(request)
        return Response(
            {
                "providerId": provider.pk,
                "date": day,
                "connectionTypes": ConnectionTypeOutput(
                    connection_types_of(provider=provider), many=True
                ).data,
                "tariffs": TariffOutput(schedule_rows(TariffRow, provider=provider, on=day), many=True).data,
                "taxes": TaxOutput(schedule_rows(TaxRule, provider=provider, on=day), many=True).data,
                "fixedCharges": FixedChargeOutput(
                    schedule_rows(FixedCharge, provider=provider, on=day), many=True
                ).data,
                "subsidies": SubsidyOutput(schedule_rows(Subsidy, provider=provider, on=day), many=True).data,
            }
        )


class TariffChangeApi(APIView):
    permission_classes = [Allowed.to("providers.change_tariffrow")]

    class TariffRowInput(serializers.Serializer):
        bucket = serializers.ChoiceField(choices=Bucket.choices, default=Bucket.ALL)
        mode = serializers.ChoiceField(choices=SlabMode.choices, default=SlabMode.AVERAGE)
        slab = serializers.IntegerField(min_value=1, default=1)
        bandLow = serializers.DecimalField(**RATE, min_value=0, default=Decimal("0"))
        bandHigh = serializers.DecimalField(
            **RATE, min_value=0, required=False, allow_null=True, default=None
        )
        rate = serializers.DecimalField(**RATE, min_value=0)
        minUnits = serializers.DecimalField(**RATE, min_value=0, default=Decimal("0"))
        minAmount = serializers.DecimalField(**MONEY, min_value=0, default=Decimal("0"))
        code = serializers.CharField(max_length=40, required=False, default="", allow_blank=True)
        description = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)

    class TariffChangeInput(serializers.Serializer):
        connectionType = serializers.CharField(required=False, allow_null=True, default=None)
        validFrom = serializers.DateField()
        rows = serializers.ListField(min_length=1, max_length=50)

    @extend_schema(
        request=TariffChangeInput,
        responses={201: TariffOutput(many=True)},
        summary="Change the rates of one connection type (or all types) from a date",
        description="A change dated the same day as the type's last change corrects it: the rows that "
        "change opened are superseded (closed the day they started) and stay in the pricing history.",
    )
    def post(self, request: Request, provider_id: int) -> Response:
        provider = provider_get_for(user=request.user, provider_id=provider_id)
        data = self.TariffChangeInput(data=request.data)
        data.is_valid(raise_exception=True)
        rows = self.TariffRowInput(data=data.validated_data["rows"], many=True)
        if not rows.is_valid():
            raise serializers.ValidationError({"rows": rows.errors})
        opened = services.tariff_change(
            provider=provider,
            connection_type=_connection_type(provider, data.validated_data["connectionType"]),
            valid_from=data.validated_data["validFrom"],
            rows=[
                services.TariffSpec(
                    bucket=row["bucket"],
                    mode=row["mode"],
                    slab=row["slab"],
                    band_low=row["bandLow"],
                    band_high=row["bandHigh"],
                    rate=row["rate"],
                    min_units=row["minUnits"],
                    min_amount=row["minAmount"],
                    code=row["code"],
                    description=row["description"],
                )
                for row in rows.validated_data
            ],
            changed_by=request.user,
        )
        return Response(TariffOutput(opened, many=True).data, status=status.HTTP_201_CREATED)


def _connection_type(provider: Provider, code: str | None) -> Any:
    if code is None:
        return None
    found = connection_types_of(provider=provider).filter(code=code).first()
    if found is None:
        raise NotFound(
            _("No connection type %(code)s for this provider.") % {"code": code}, field="connectionType"
        )
    return found


def _authority(provider: Provider, code: str, field: str) -> Any:
    found = authorities_of(provider=provider).filter(code=code).first()
    if found is None:
        raise NotFound(_("No authority %(code)s for this provider.") % {"code": code}, field=field)
    return found


class DatedRowInput(serializers.Serializer):
    connectionType = serializers.CharField(required=False, allow_null=True, default=None)
    validFrom = serializers.DateField()
    validTo = serializers.DateField(required=False, allow_null=True, default=None)


class TaxInput(DatedRowInput):
    name = serializers.CharField(max_length=100)
    authority = serializers.CharField(max_length=20)
    rate = serializers.DecimalField(max_digits=7, decimal_places=4, min_value=0, max_value=1)


class FixedChargeInput(DatedRowInput):
    name = serializers.CharField(max_length=100)
    authority = serializers.CharField(max_length=20)
    amount = serializers.DecimalField(**MONEY, min_value=0)


class SubsidyInput(DatedRowInput):
    code = serializers.CharField(max_length=40)
    description = serializers.CharField(max_length=300, required=False, default="", allow_blank=True)
    payer = serializers.CharField(max_length=20)
    basis = serializers.ChoiceField(choices=SubsidyBasis.choices, default=SubsidyBasis.USAGE)
    bandLow = serializers.DecimalField(**RATE, min_value=0, required=False, allow_null=True, default=None)
    bandHigh = serializers.DecimalField(**RATE, min_value=0, required=False, allow_null=True, default=None)
    incomeCeiling = serializers.DecimalField(
        **MONEY, min_value=0, required=False, allow_null=True, default=None
    )
    ratePerUnit = serializers.DecimalField(**RATE, min_value=0, required=False, allow_null=True, default=None)
    percent = serializers.DecimalField(
        max_digits=5,
        decimal_places=2,
        min_value=0,
        max_value=100,
        required=False,
        allow_null=True,
        default=None,
    )


def _build(kind: type[DatedRow], provider: Provider, values: dict[str, Any]) -> DatedRow:
    common = {
        "provider": provider,
        "connection_type": _connection_type(provider, values["connectionType"]),
        "valid_from": values["validFrom"],
        "valid_to": values["validTo"],
    }
    if kind is TaxRule:
        return TaxRule(
            **common,
            name=values["name"],
            authority=_authority(provider, values["authority"], "authority"),
            rate=values["rate"],
        )
    if kind is FixedCharge:
        return FixedCharge(
            **common,
            name=values["name"],
            authority=_authority(provider, values["authority"], "authority"),
            amount=values["amount"],
        )
    return Subsidy(
        **common,
        code=values["code"],
        description=values["description"],
        payer=_authority(provider, values["payer"], "payer"),
        basis=values["basis"],
        band_low=values["bandLow"],
        band_high=values["bandHigh"],
        income_ceiling=values["incomeCeiling"],
        rate_per_unit=values["ratePerUnit"],
        percent=values["percent"],
    )


KINDS: dict[str, tuple[type[DatedRow], type[serializers.Serializer], type[serializers.Serializer]]] = {
    "tariffs": (TariffRow, TariffChangeApi.TariffRowInput, TariffOutput),
    "taxes": (TaxRule, TaxInput, TaxOutput),
    "fixed-charges": (FixedCharge, FixedChargeInput, FixedChargeOutput),
    "subsidies": (Subsidy, SubsidyInput, SubsidyOutput),
}


class ScheduleRowsApi(APIView):
    """List a kind of schedule row (all history, or in force on ?date=), or add one (not tariffs)."""

    kind = "tariffs"  # set per URL by as_view(kind=...)
    pagination_class = PagePagination  # the schema documents the page, as for the generic list views

    def get_permissions(self) -> list:
        model = KINDS[self.kind][0]._meta.model_name
        action = "view" if self.request.method == "GET" else "add"
        return [Allowed.to(f"providers.{action}_{model}")()]

    def get(self, request: Request, provider_id: int) -> Response:
        provider = provider_get_for(user=request.user, provider_id=provider_id)
        model, _input, output = KINDS[self.kind]
        on = _day(request) if "date" in request.query_params else None
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(schedule_rows(model, provider=provider, on=on), request, view=self)
        return paginator.get_paginated_response(output(page, many=True).data)

    def post(self, request: Request, provider_id: int) -> Response:
        provider = provider_get_for(user=request.user, provider_id=provider_id)
        model, input_serializer, output = KINDS[self.kind]
        data = input_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        row = services.schedule_row_add(
            row=_build(model, provider, data.validated_data), created_by=request.user
        )
        return Response(output(row).data, status=status.HTTP_201_CREATED)


class CloseInput(serializers.Serializer):
    validTo = serializers.DateField(help_text="The first day the row is no longer in force.")


class ScheduleRowCloseApi(APIView):
    kind = "taxes"  # set per URL by as_view(kind=...)

    def get_permissions(self) -> list:
        return [Allowed.to(f"providers.change_{KINDS[self.kind][0]._meta.model_name}")()]

    def post(self, request: Request, provider_id: int, row_id: int) -> Response:
        provider = provider_get_for(user=request.user, provider_id=provider_id)
        model, _input, output = KINDS[self.kind]
        row = schedule_rows(model, provider=provider).filter(pk=row_id).first()
        if row is None:
            raise NotFound(_("No such row in this provider's %(kind)s.") % {"kind": self.kind})
        data = CloseInput(data=request.data)
        data.is_valid(raise_exception=True)
        row = services.schedule_row_close(
            row=row, valid_to=data.validated_data["validTo"], closed_by=request.user
        )
        return Response(output(row).data)


class ConnectionTypesApi(APIView):
    def get_permissions(self) -> list:
        action = "view" if self.request.method == "GET" else "add"
        return [Allowed.to(f"providers.{action}_connectiontype")()]

    @extend_schema(responses={200: ConnectionTypeOutput(many=True)}, summary="A provider's connection types")
    def get(self, request: Request, provider_id: int) -> Response:
        provider = provider_get_for(user=request.user, provider_id=provider_id)
        return Response(ConnectionTypeOutput(connection_types_of(provider=provider), many=True).data)

    class ConnectionTypeInput(serializers.Serializer):
        code = serializers.CharField(max_length=20)
        description = serializers.CharField(max_length=200)
        sanctionedLoadKw = serializers.DecimalField(
            max_digits=10, decimal_places=2, min_value=0, required=False, allow_null=True, default=None
        )

    @extend_schema(
        request=ConnectionTypeInput, responses={201: ConnectionTypeOutput}, summary="Add a connection type"
    )
    def post(self, request: Request, provider_id: int) -> Response:
        provider = provider_get_for(user=request.user, provider_id=provider_id)
        data = self.ConnectionTypeInput(data=request.data)
        data.is_valid(raise_exception=True)
        row = services.connection_type_create(
            provider=provider,
            code=data.validated_data["code"],
            description=data.validated_data["description"],
            sanctioned_load_kw=data.validated_data["sanctionedLoadKw"],
        )
        return Response(ConnectionTypeOutput(row).data, status=status.HTTP_201_CREATED)


def rows_api(kind: str) -> type[APIView]:
    """The list (and, but for tariffs, add) endpoint of one kind of schedule row, documented for it."""
    model, input_serializer, output = KINDS[kind]
    name = model._meta.verbose_name_plural
    methods = {
        "get": extend_schema(
            parameters=[OpenApiParameter("date", date, description="Only rows in force that day.")],
            responses={200: output(many=True)},
            summary=f"A provider's {name}, all history or in force on a date",
        )
    }
    attributes: dict[str, Any] = {"kind": kind}
    if model is TariffRow:
        attributes["http_method_names"] = ["get", "options"]  # tariffs change through tariff-changes
    else:
        methods["post"] = extend_schema(
            request=input_serializer, responses={201: output}, summary=f"Add to {name}"
        )
    return extend_schema_view(**methods)(type(f"{model.__name__}RowsApi", (ScheduleRowsApi,), attributes))


def row_close_api(kind: str) -> type[APIView]:
    model, _input, output = KINDS[kind]
    view = type(f"{model.__name__}CloseApi", (ScheduleRowCloseApi,), {"kind": kind})
    return extend_schema_view(
        post=extend_schema(
            request=CloseInput,
            responses={200: output},
            summary=f"End one of {model._meta.verbose_name_plural} from a date",
        )
    )(view)
