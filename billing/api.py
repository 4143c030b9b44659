"""Customers and connections (list, create, read, change, a declared income, bulk onboarding), meter
readings and meter exchanges, and the usage calculator (the bill preview is invoicing's). Thin: parse, look up through a
selector, call one service, render. JSON keys are camelCase, as the seeds write them; a printed number
is `customerId` / `connectionId`, a database id is `id` (and `customer` on a connection)."""

from decimal import Decimal
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import ERRORS
from accounts.permissions import Allowed, role_allows
from billing import services
from billing.importing import COLUMNS, csv_file_rows, customers_import
from billing.models import (
    ConnectionStatus,
    Customer,
    CustomerKind,
    Language,
    MeterExchange,
    MeterReading,
    ReadingSource,
    ServiceConnection,
)
from billing.rating import RatedBill, as_json
from billing.selectors import (
    connection_get_for,
    connection_list_for,
    customer_get_for,
    customer_list_for,
    meter_exchange_list_for,
    own_connection_get_for,
    own_connections_for,
    own_customer_for,
    usage_estimate,
    with_last_reading,
)
from config.errors import DomainError, Forbidden, NotFound
from config.parsers import SafeJSONParser
from providers.models import ConnectionType

KWH = {"max_digits": 14, "decimal_places": 4}
ID = {"min_value": 1, "max_value": 2**63 - 1}  # a database id; anything else is a 400, not an overflow
MAX_UPLOAD_ROWS = 50_000
# Each onboarding row runs the services in a transaction of its own: a few thousand fit one request.
MAX_ONBOARDING_ROWS = 2_000
NUMBER_TAKEN = {
    409: OpenApiResponse(
        description="The number is taken (`number_taken`), or the meter is on another connection (`meter_in_use`)."
    )
}
CLOSED = {
    409: OpenApiResponse(
        description="The connection is closed (`connection_closed`): its record stays as it was."
    )
}


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


def uploaded_rows(request: Request, *, max_rows: int, what: str) -> list[dict]:
    """The rows of an upload: a CSV file with a header line (field `file`) or a JSON list of objects."""
    upload = request.FILES.get("file")
    if upload is not None:
        return csv_file_rows(upload, max_rows=max_rows)
    if isinstance(request.data, list):
        rows = request.data
    else:
        raise DomainError(
            _("Send a CSV file in the field 'file', or a JSON list of %(what)s.") % {"what": what},
            field="file",
        )
    if not rows:
        raise DomainError(_("The upload has no rows."), field="file")
    if len(rows) > max_rows:
        raise DomainError(
            _("Upload at most %(count)s rows at a time.") % {"count": f"{max_rows:,}"}, field="file"
        )
    if not all(isinstance(row, dict) for row in rows):
        raise DomainError(_("Each row must be an object with named fields."), field="file")
    return rows


def _callers_provider(request: Request) -> Any:
    if request.user.provider is None:
        raise DomainError(
            _("Sign in as a user of a provider: this works on one provider's connections and prices.")
        )
    return request.user.provider


# --- customers -----------------------------------------------------------------------------------


class ConnectionSummary(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    connectionId = serializers.CharField(source="number")
    connectionType = serializers.CharField(source="connection_type.code")
    meterNumber = serializers.CharField(source="meter_number")
    installationDate = serializers.DateField(source="installation_date", allow_null=True)
    status = serializers.ChoiceField(choices=ConnectionStatus.choices)


class CustomerOutput(serializers.Serializer):
    id = serializers.IntegerField(source="pk", help_text="The customer's id: GET /api/customers/{id}.")
    customerId = serializers.CharField(source="number", help_text="As printed, e.g. LHR-RES-0001.")
    name = serializers.CharField()
    nationalId = serializers.CharField(source="national_id", help_text="CNIC, e.g. 35202-1234567-1.")
    email = serializers.CharField(help_text="Where bills and notices are sent; empty: none are.")
    phoneNumber = serializers.CharField(source="phone")
    address = serializers.CharField()
    kind = serializers.ChoiceField(choices=CustomerKind.choices)
    organisation = serializers.CharField()
    preferredLanguage = serializers.ChoiceField(source="preferred_language", choices=Language.choices)
    notifyBills = serializers.BooleanField(source="notify_bills")
    notifyReminders = serializers.BooleanField(source="notify_reminders")
    notifyPayments = serializers.BooleanField(source="notify_payments")
    userId = serializers.IntegerField(
        source="user_id", allow_null=True, help_text="The customer's login (a user id); null: none yet."
    )
    connectionCount = serializers.IntegerField(source="connection_count")
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")


class CustomerDetailOutput(CustomerOutput):
    connections = ConnectionSummary(many=True, help_text="The customer's connections, by number.")


class CustomerChangeInput(serializers.Serializer):
    """What may change of a customer; the number stays (it is printed on every bill)."""

    name = serializers.CharField(max_length=150, required=False)
    nationalId = serializers.CharField(
        source="national_id",
        max_length=20,
        required=False,
        allow_blank=True,
        help_text="CNIC as 12345-1234567-1 (13 digits without dashes are accepted).",
    )
    email = serializers.EmailField(required=False, allow_blank=True)
    phoneNumber = serializers.CharField(source="phone", max_length=30, required=False, allow_blank=True)
    address = serializers.CharField(max_length=300, required=False, allow_blank=True)
    kind = serializers.ChoiceField(choices=CustomerKind.choices, required=False)
    organisation = serializers.CharField(max_length=200, required=False, allow_blank=True)
    preferredLanguage = serializers.ChoiceField(
        source="preferred_language", choices=Language.choices, required=False
    )
    notifyBills = serializers.BooleanField(source="notify_bills", required=False)
    notifyReminders = serializers.BooleanField(source="notify_reminders", required=False)
    notifyPayments = serializers.BooleanField(source="notify_payments", required=False)


class CustomerCreateInput(CustomerChangeInput):
    customerId = serializers.CharField(
        source="number",
        max_length=40,
        required=False,
        allow_blank=True,
        help_text="The number as printed; omit it to have the next of the provider's series (CODE-C-000123).",
    )
    name = serializers.CharField(max_length=150)
    invite = serializers.BooleanField(
        default=False,
        help_text="true, with an e-mail address: invite the customer to the portal at once (a login made "
        "from the address, and an e-mail with a link to set its password).",
    )


class CustomerFilter(filters.FilterSet):
    search = filters.CharFilter(
        label="Search", method="filter_search", help_text="Part of the number, name, e-mail, phone or CNIC"
    )
    kind = filters.ChoiceFilter(label="Kind", choices=CustomerKind.choices)
    connectionStatus = filters.ChoiceFilter(
        label="With a connection", choices=ConnectionStatus.choices, method="filter_connection_status"
    )
    hasLogin = filters.BooleanFilter(
        label="Has a login", field_name="user", lookup_expr="isnull", exclude=True
    )

    class Meta:
        model = Customer
        fields: list[str] = []

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        text = value.strip()
        return queryset.filter(
            Q(number__icontains=text)
            | Q(name__icontains=text)
            | Q(email__icontains=text)
            | Q(phone__icontains=text)
            | Q(national_id__icontains=text)
        )

    def filter_connection_status(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(
            Exists(ServiceConnection.objects.filter(customer=OuterRef("pk"), status=value))
        )


class CustomerCollectionApi(generics.ListAPIView):
    serializer_class = CustomerOutput
    filterset_class = CustomerFilter
    queryset = Customer.objects.none()  # for the schema; requests use get_queryset

    def get_permissions(self) -> list:
        perm = "billing.add_customer" if self.request.method == "POST" else "billing.view_customer"
        return [Allowed.to(perm)()]

    def get_queryset(self) -> QuerySet[Customer]:
        return customer_list_for(user=self.request.user).order_by("number")

    @extend_schema(
        summary="The provider's customers, by number (filters: search, kind, connection status, login)"
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=CustomerCreateInput,
        responses={201: CustomerDetailOutput, **ERRORS, **NUMBER_TAKEN},
        summary="Open a customer account (the number given, or the next of the provider's series)",
    )
    def post(self, request: Request) -> Response:
        data = CustomerCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        if data.validated_data["invite"] and not role_allows(
            request.user.active_role, "accounts.invite_customer", user=request.user
        ):
            raise Forbidden(_("Your current role may not invite customers to the portal."), field="invite")
        customer = services.customer_create(
            provider=_callers_provider(request), **data.validated_data, created_by=request.user
        )
        detail = customer_get_for(user=request.user, customer_id=customer.pk)
        return Response(CustomerDetailOutput(detail).data, status=status.HTTP_201_CREATED)


class CustomerItemApi(APIView):
    def get_permissions(self) -> list:
        perm = "billing.change_customer" if self.request.method == "PATCH" else "billing.view_customer"
        return [Allowed.to(perm)()]

    @extend_schema(responses={200: CustomerDetailOutput, **ERRORS}, summary="A customer with its connections")
    def get(self, request: Request, customer_id: int) -> Response:
        return Response(
            CustomerDetailOutput(customer_get_for(user=request.user, customer_id=customer_id)).data
        )

    @extend_schema(
        request=CustomerChangeInput,
        responses={200: CustomerDetailOutput, **ERRORS},
        summary="Change a customer's contact details, kind, national id, language or notification choices",
    )
    def patch(self, request: Request, customer_id: int) -> Response:
        customer = customer_get_for(user=request.user, customer_id=customer_id)
        if isinstance(request.data, dict) and "customerId" in request.data:
            raise DomainError(
                _("A customer's number stays: it is printed on every bill."), field="customerId"
            )
        data = CustomerChangeInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        services.customer_update(customer=customer, **data.validated_data)
        return Response(
            CustomerDetailOutput(customer_get_for(user=request.user, customer_id=customer.pk)).data
        )


class ImportRowOutput(serializers.Serializer):
    row = serializers.IntegerField(help_text="1 for the first row under the header.")
    customerId = serializers.CharField(help_text="The customer's number, as given or as generated.")
    connectionId = serializers.CharField(
        help_text="The connection's number; empty: no connection on the row."
    )
    result = serializers.ChoiceField(choices=["created", "unchanged", "refused"])
    reason = serializers.CharField(help_text="Why the row was refused; empty otherwise.")


class ImportOutput(serializers.Serializer):
    created = serializers.IntegerField(help_text="Rows that added a customer or a connection.")
    unchanged = serializers.IntegerField(help_text="Rows whose customer and connection were stored already.")
    refused = serializers.IntegerField()
    customersCreated = serializers.IntegerField()
    connectionsCreated = serializers.IntegerField()
    rows = ImportRowOutput(many=True)


class CustomerImportApi(APIView):
    """Onboarding in bulk: a CSV file (field `file`) or a JSON list of rows."""

    permission_classes = [Allowed.to("billing.add_customer"), Allowed.to("billing.add_serviceconnection")]
    parser_classes = [MultiPartParser, SafeJSONParser]

    @extend_schema(
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
            },
            "application/json": {"type": "array", "items": {"type": "object"}},
        },
        responses={200: ImportOutput, **ERRORS},
        summary="Onboard customers and connections from a CSV file or a JSON list of rows",
        description="One row per connection with its customer's details, or a customer alone. Columns: "
        f"{', '.join(COLUMNS)}. Only `name` (a new customer) and `connection_type` (a new connection) are "
        "required; an empty customer_id or connection_id takes the next of the provider's series. Each row is "
        "kept or refused whole; what is stored already is left as it is (`unchanged`), or refused where the row "
        f"differs. At most {MAX_ONBOARDING_ROWS:,} rows at a time.",
    )
    def post(self, request: Request) -> Response:
        provider = _callers_provider(request)
        rows = uploaded_rows(request, max_rows=MAX_ONBOARDING_ROWS, what=_("customers and connections"))
        report = customers_import(provider=provider, rows=rows, imported_by=request.user)
        return Response(report.as_json())


# --- connections ---------------------------------------------------------------------------------


class ConnectionOutput(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    connectionId = serializers.CharField(source="number")
    customer = serializers.IntegerField(
        source="customer_id", help_text="The customer's id: GET /api/customers/{id}."
    )
    customerId = serializers.CharField(source="customer.number", help_text="As printed, e.g. LHR-RES-0001.")
    customerUserId = serializers.IntegerField(
        source="customer.user_id",
        allow_null=True,
        help_text="The customer's user id: what POST /api/invoices takes as customerId; null: no login yet.",
    )
    customerName = serializers.CharField(source="customer.name")
    connectionType = serializers.CharField(source="connection_type.code")
    meterNumber = serializers.CharField(source="meter_number")
    meterType = serializers.CharField(source="meter_type")
    division = serializers.CharField()
    subdivision = serializers.CharField()
    installationDate = serializers.DateField(source="installation_date", allow_null=True)
    status = serializers.ChoiceField(choices=ConnectionStatus.choices)
    declaredMonthlyIncome = serializers.DecimalField(
        source="declared_monthly_income",
        max_digits=14,
        decimal_places=2,
        allow_null=True,
        help_text="For income-based subsidies; null: not declared.",
    )
    incomeDeclaredOn = serializers.DateField(source="income_declared_on", allow_null=True)
    incomeRecordedBy = serializers.CharField(source="income_recorded_by.name", default=None, allow_null=True)


class ConnectionCreateInput(serializers.Serializer):
    customer = serializers.IntegerField(
        **ID, required=False, help_text="The customer's id (GET /api/customers)."
    )
    customerId = serializers.CharField(
        max_length=40, required=False, help_text="Or the customer's number as printed, e.g. LHR-RES-0001."
    )
    connectionId = serializers.CharField(
        source="number",
        max_length=40,
        required=False,
        allow_blank=True,
        help_text="The number as printed; omit it to have the next of the provider's series (CODE-SC-000123).",
    )
    connectionType = serializers.CharField(
        max_length=20, help_text="One of the provider's connection type codes."
    )
    meterNumber = serializers.CharField(
        source="meter_number", max_length=40, required=False, allow_blank=True
    )
    meterType = serializers.CharField(source="meter_type", max_length=60, required=False, allow_blank=True)
    division = serializers.CharField(max_length=100, required=False, allow_blank=True)
    subdivision = serializers.CharField(max_length=100, required=False, allow_blank=True)
    installationDate = serializers.DateField(source="installation_date", required=False, allow_null=True)

    def validate(self, values: dict) -> dict:
        if ("customer" in values) == ("customerId" in values):
            raise serializers.ValidationError(
                {"customer": _("Name the customer: by id (customer) or by number (customerId), one of them.")}
            )
        return values


class ConnectionChangeInput(serializers.Serializer):
    meterNumber = serializers.CharField(
        source="meter_number",
        max_length=40,
        required=False,
        allow_blank=True,
        help_text="Only before the meter's first reading; a meter with readings is replaced by a meter exchange.",
    )
    meterType = serializers.CharField(source="meter_type", max_length=60, required=False, allow_blank=True)
    division = serializers.CharField(max_length=100, required=False, allow_blank=True)
    subdivision = serializers.CharField(max_length=100, required=False, allow_blank=True)
    installationDate = serializers.DateField(source="installation_date", required=False, allow_null=True)


# What a connection's life changes, each by a step of its own; never by a PATCH.
LIFECYCLE_FIELDS = {
    "status": gettext_lazy(
        "The status changes as the connection is connected, disconnected, reconnected or closed."
    ),
    "connectionType": gettext_lazy(
        "A change of connection type is made from a date, as a step of the connection's life."
    ),
    "customer": gettext_lazy("A connection passes to another customer by a move-out and move-in."),
    "customerId": gettext_lazy("A connection passes to another customer by a move-out and move-in."),
    "connectionId": gettext_lazy("A connection's number stays: it is printed on every bill."),
    "declaredMonthlyIncome": gettext_lazy("Declare an income at POST /api/connections/{id}/income."),
}


class ConnectionFilter(filters.FilterSet):
    search = filters.CharFilter(
        label="Search",
        method="filter_search",
        help_text="Part of the number, meter number, or customer number or name",
    )
    status = filters.ChoiceFilter(label="Status", choices=ConnectionStatus.choices)
    connectionType = filters.CharFilter(label="Connection type", field_name="connection_type__code")
    customer = filters.NumberFilter(label="Customer id", field_name="customer_id", **ID)
    customerId = filters.CharFilter(label="Customer number", field_name="customer__number")
    division = filters.CharFilter(label="Division", field_name="division", lookup_expr="iexact")

    class Meta:
        model = ServiceConnection
        fields: list[str] = []

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        text = value.strip()
        return queryset.filter(
            Q(number__icontains=text)
            | Q(meter_number__icontains=text)
            | Q(customer__number__icontains=text)
            | Q(customer__name__icontains=text)
        )


class ConnectionCollectionApi(generics.ListAPIView):
    serializer_class = ConnectionOutput
    filterset_class = ConnectionFilter
    queryset = ServiceConnection.objects.none()  # for the schema; requests use get_queryset

    def get_permissions(self) -> list:
        perm = (
            "billing.add_serviceconnection"
            if self.request.method == "POST"
            else "billing.view_serviceconnection"
        )
        return [Allowed.to(perm)()]

    def get_queryset(self) -> QuerySet[ServiceConnection]:
        return connection_list_for(user=self.request.user)

    @extend_schema(
        summary="The provider's connections, by number (filters: search, status, type, customer, division)"
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=ConnectionCreateInput,
        responses={201: ConnectionOutput, **ERRORS, **NUMBER_TAKEN},
        summary="Add a connection to a customer: Pending until connected with its first reading",
    )
    def post(self, request: Request) -> Response:
        data = ConnectionCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        customer = _customer_named(
            request, customer_id=values.pop("customer", None), number=values.pop("customerId", None)
        )
        code = values.pop("connectionType")
        connection_type = ConnectionType.objects.filter(provider_id=customer.provider_id, code=code).first()
        if connection_type is None:
            codes = ConnectionType.objects.filter(provider_id=customer.provider_id).values_list(
                "code", flat=True
            )
            raise DomainError(
                _("No connection type %(code)s; the types are: %(types)s.")
                % {"code": code, "types": ", ".join(codes) or _("none yet")},
                field="connectionType",
            )
        connection = services.connection_create(customer=customer, connection_type=connection_type, **values)
        connection = connection_get_for(user=request.user, connection_id=connection.pk)
        return Response(ConnectionOutput(connection).data, status=status.HTTP_201_CREATED)


def _customer_named(request: Request, *, customer_id: int | None, number: str | None) -> Customer:
    customers = customer_list_for(user=request.user)
    found = customers.filter(pk=customer_id) if customer_id is not None else customers.filter(number=number)
    # A platform user sees every provider's customers: the same number at two is not guessed between.
    matches = list(found[:2])
    if len(matches) != 1:
        message = (
            _("No single customer with id %(value)s in your company; GET /api/customers lists them.")
            if customer_id is not None
            else _("No single customer with number %(value)s in your company; GET /api/customers lists them.")
        )
        raise NotFound(
            message % {"value": customer_id if customer_id is not None else number},
            field="customer" if customer_id is not None else "customerId",
        )
    return matches[0]


class ConnectionItemApi(APIView):
    def get_permissions(self) -> list:
        perm = (
            "billing.change_serviceconnection"
            if self.request.method == "PATCH"
            else "billing.view_serviceconnection"
        )
        return [Allowed.to(perm)()]

    @extend_schema(responses={200: ConnectionOutput, **ERRORS}, summary="A connection")
    def get(self, request: Request, connection_id: int) -> Response:
        return Response(
            ConnectionOutput(connection_get_for(user=request.user, connection_id=connection_id)).data
        )

    @extend_schema(
        request=ConnectionChangeInput,
        responses={200: ConnectionOutput, **ERRORS, **CLOSED, **NUMBER_TAKEN},
        summary="Change a connection's meter details, division or installation date",
        description="Status, type, customer and number are not changed here: each changes by a step of the "
        "connection's life (connect, disconnect, reconnect, close, a type change, a move), refused here with the reason.",
    )
    def patch(self, request: Request, connection_id: int) -> Response:
        connection = connection_get_for(user=request.user, connection_id=connection_id)
        if isinstance(request.data, dict):
            for name, reason in LIFECYCLE_FIELDS.items():
                if name in request.data:
                    raise DomainError(
                        _("%(reason)s It is not changed here.") % {"reason": reason}, field=name
                    )
        data = ConnectionChangeInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        services.connection_update(connection=connection, **data.validated_data)
        return Response(
            ConnectionOutput(connection_get_for(user=request.user, connection_id=connection.pk)).data
        )


class IncomeInput(serializers.Serializer):
    monthlyIncome = serializers.DecimalField(
        max_digits=14, decimal_places=2, min_value=Decimal("0"), help_text="In the provider's currency."
    )
    declaredOn = serializers.DateField(
        default=timezone.localdate,
        help_text="The day the customer declared it; default today. Never in the future.",
    )


class ConnectionIncomeApi(APIView):
    permission_classes = [Allowed.to("billing.declare_income")]

    @extend_schema(
        request=IncomeInput,
        responses={200: ConnectionOutput, **ERRORS, **CLOSED},
        summary="Record the monthly income the customer declared (for income-based subsidies)",
        description="Bills issued from now on test it against each income-based subsidy's ceiling. The "
        "declaration replaces the one before it; one dated before the declaration on record is refused.",
    )
    def post(self, request: Request, connection_id: int) -> Response:
        connection = connection_get_for(user=request.user, connection_id=connection_id)
        data = IncomeInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.connection_income_declare(
            connection=connection,
            monthly_income=data.validated_data["monthlyIncome"],
            declared_on=data.validated_data["declaredOn"],
            recorded_by=request.user,
        )
        return Response(
            ConnectionOutput(connection_get_for(user=request.user, connection_id=connection.pk)).data
        )


class ReadingOutput(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    takenAt = serializers.DateTimeField(source="taken_at")
    importPeak = serializers.DecimalField(source="import_peak", **KWH)
    importOffPeak = serializers.DecimalField(source="import_off_peak", **KWH)
    exportPeak = serializers.DecimalField(source="export_peak", **KWH)
    exportOffPeak = serializers.DecimalField(source="export_off_peak", **KWH)
    meterReplaced = serializers.BooleanField(source="meter_replaced")
    source = serializers.CharField()


class RegistersInput(serializers.Serializer):
    """A meter's cumulative registers, kWh (export registers 0 when not given)."""

    importPeak = serializers.DecimalField(**KWH, min_value=0)
    importOffPeak = serializers.DecimalField(**KWH, min_value=0)
    exportPeak = serializers.DecimalField(**KWH, min_value=0, default=Decimal("0"))
    exportOffPeak = serializers.DecimalField(**KWH, min_value=0, default=Decimal("0"))


def registers_of(values: dict | None) -> dict[str, Decimal] | None:
    """The services' register names for validated `RegistersInput` values (None: no reading given)."""
    if values is None:
        return None
    return {
        "import_peak": values["importPeak"],
        "import_off_peak": values["importOffPeak"],
        "export_peak": values["exportPeak"],
        "export_off_peak": values["exportOffPeak"],
    }


class ReadingInput(RegistersInput):
    takenAt = ReadingTimeField()
    meterReplaced = serializers.BooleanField(default=False, help_text="A new meter: registers start again.")


class SelfReadingInput(RegistersInput):
    """A customer's reading of their own meter: the registers it shows, and when it was read. A meter
    exchange is the provider's to record."""

    takenAt = ReadingTimeField(help_text="When the meter was read, with its time zone.")


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
            registers=registers_of(values),
            meter_replaced=values["meterReplaced"],
            recorded_by=request.user,
        )
        return Response(ReadingOutput(reading).data, status=status.HTTP_201_CREATED)


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

    @extend_schema_field(RegistersInput)
    def get_oldFinal(self, exchange: MeterExchange) -> dict:
        return self._registers(exchange, "final")

    @extend_schema_field(RegistersInput)
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
    oldFinal = RegistersInput(help_text="The old meter's registers when it was taken out.")
    newFirst = RegistersInput(help_text="The new meter's registers when it was put in.")
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
            old_final=registers_of(values["oldFinal"]),
            new_first=registers_of(values["newFirst"]),
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
        rows = uploaded_rows(request, max_rows=MAX_UPLOAD_ROWS, what=_("readings"))
        report = services.readings_upload(provider=provider, rows=rows, recorded_by=request.user)
        return Response(
            {"accepted": report.accepted, "unchanged": report.unchanged, "refused": report.refused}
        )


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
            raise NotFound(
                _("No connection type %(code)s.") % {"code": values["connectionType"]}, field="connectionType"
            )
        bill = usage_estimate(
            provider=provider,
            connection_type=connection_type,
            peak_kwh=values["peakKwh"],
            off_peak_kwh=values["offPeakKwh"],
            days=values["days"],
        )
        return Response(bill_body(bill))


# --- invitations ----------------------------------------------------------------------------------------


class MessageOutput(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    kind = serializers.CharField()
    recipient = serializers.EmailField()
    language = serializers.CharField()
    status = serializers.CharField()
    createdAt = serializers.DateTimeField(source="created_at")


class CustomerInviteApi(APIView):
    permission_classes = [Allowed.to("accounts.invite_customer")]

    @extend_schema(
        request=None,
        responses={
            202: inline_serializer(
                "Invitation",
                {
                    "customerId": serializers.CharField(),
                    "userId": serializers.IntegerField(),
                    "message": MessageOutput(),
                },
            ),
            409: OpenApiResponse(description="Another account uses the customer's e-mail address."),
        },
        summary="E-mail a customer an invitation to the portal (their login is made when they have none)",
    )
    def post(self, request: Request, customer_id: int) -> Response:
        customer = customer_get_for(user=request.user, customer_id=customer_id)
        message = services.customer_invite(customer=customer, invited_by=request.user)
        return Response(
            {
                "customerId": customer.number,
                "userId": message.user_id,
                "message": MessageOutput(message).data,
            },
            status=status.HTTP_202_ACCEPTED,
        )


# --- a customer's own account: /api/me/... ---------------------------------------------------------------


class ProfileOutput(serializers.Serializer):
    customerId = serializers.CharField(source="number")
    name = serializers.CharField()
    loginEmail = serializers.EmailField(source="user.email", help_text="The address to sign in with.")
    email = serializers.CharField(help_text="Where bills and notices are e-mailed; empty: none are.")
    phone = serializers.CharField()
    address = serializers.CharField()
    preferredLanguage = serializers.ChoiceField(source="preferred_language", choices=Language.choices)
    notifyBills = serializers.BooleanField(source="notify_bills")
    notifyReminders = serializers.BooleanField(source="notify_reminders")
    notifyPayments = serializers.BooleanField(source="notify_payments")


class ProfileInput(serializers.Serializer):
    email = serializers.EmailField(required=False, allow_blank=True, help_text="Empty: no e-mails.")
    phone = serializers.CharField(required=False, allow_blank=True, max_length=30)
    address = serializers.CharField(required=False, allow_blank=True, max_length=300)
    preferredLanguage = serializers.ChoiceField(
        source="preferred_language", required=False, choices=Language.choices
    )
    notifyBills = serializers.BooleanField(source="notify_bills", required=False)
    notifyReminders = serializers.BooleanField(source="notify_reminders", required=False)
    notifyPayments = serializers.BooleanField(source="notify_payments", required=False)


class MyProfileApi(APIView):
    permission_classes = [Allowed.to("billing.change_own_customer")]

    @extend_schema(
        responses={200: ProfileOutput}, summary="My contact details, language and notification choices"
    )
    def get(self, request: Request) -> Response:
        return Response(ProfileOutput(own_customer_for(user=request.user)).data)

    @extend_schema(
        request=ProfileInput,
        responses={200: ProfileOutput},
        summary="Change my contact details, language or notification choices",
    )
    def patch(self, request: Request) -> Response:
        customer = own_customer_for(user=request.user)
        data = ProfileInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        return Response(
            ProfileOutput(services.customer_profile_update(customer=customer, **data.validated_data)).data
        )


class MyConnectionOutput(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    connectionId = serializers.CharField(source="number")
    connectionType = serializers.CharField(source="connection_type.code")
    connectionTypeName = serializers.CharField(source="connection_type.description")
    meterNumber = serializers.CharField(source="meter_number")
    division = serializers.CharField()
    subdivision = serializers.CharField()
    status = serializers.CharField()
    lastReading = ReadingOutput(source="last_reading", allow_null=True)


class MyConnectionListApi(APIView):
    permission_classes = [Allowed.to("billing.view_own_serviceconnection")]

    @extend_schema(
        responses={200: MyConnectionOutput(many=True)},
        summary="Every connection of my account, billed yet or not, with its latest reading",
    )
    def get(self, request: Request) -> Response:
        connections = with_last_reading(own_connections_for(user=request.user))
        return Response(MyConnectionOutput(connections, many=True).data)


class MyReadingsApi(APIView):
    def get_permissions(self) -> list:
        perm = (
            "billing.view_own_serviceconnection"
            if self.request.method == "GET"
            else "billing.add_own_meterreading"
        )
        return [Allowed.to(perm)()]

    @extend_schema(
        responses={200: ReadingOutput(many=True)}, summary="My connection's readings, oldest first"
    )
    def get(self, request: Request, connection_id: int) -> Response:
        connection = own_connection_get_for(user=request.user, connection_id=connection_id)
        return Response(ReadingOutput(connection.readings.all(), many=True).data)

    @extend_schema(
        request=SelfReadingInput,
        responses={201: ReadingOutput, 409: OpenApiResponse(description="A reading at that moment exists.")},
        summary="Send in a reading of my meter (a self-read); one the meter could not show is refused",
    )
    def post(self, request: Request, connection_id: int) -> Response:
        connection = own_connection_get_for(user=request.user, connection_id=connection_id)
        data = SelfReadingInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        reading = services.reading_record(
            connection=connection,
            taken_at=values["takenAt"],
            registers=registers_of(values),
            source=ReadingSource.SELF,
            recorded_by=request.user,
        )
        return Response(ReadingOutput(reading).data, status=status.HTTP_201_CREATED)
