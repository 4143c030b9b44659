"""A connection's lifecycle in the API: connecting it, its history of steps, and the shapes every step
endpoint shares (invoicing/lifecycle_api.py has the steps that bill or weigh money).

Each step is `POST /api/connections/{id}/<step>` and answers 201 with the connection's status and
the step(s) recorded; a step that does not apply in the connection's status is a 409 with the reason.
"""

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import Allowed
from billing.api import ReadingTimeField, RegistersInput, registers_of
from billing.lifecycle import connection_connect
from billing.lifecycle_selectors import connection_events_for
from billing.models import ConnectionEvent, ServiceConnection
from billing.selectors import connection_get_for

MONEY = {"max_digits": 14, "decimal_places": 2}

NOT_FOUND = OpenApiResponse(description="No such connection of the caller's provider.")
WRONG_STATUS = OpenApiResponse(
    description="The step does not apply in the connection's status (`extra.connectionStatus`)."
)


def reason_field(**kwargs: Any) -> serializers.CharField:
    return serializers.CharField(max_length=300, help_text="Why: kept in the connection's history.", **kwargs)


class ConnectionEventOutput(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    kind = serializers.ChoiceField(choices=ConnectionEvent._meta.get_field("kind").choices)
    effectiveAt = serializers.DateTimeField(source="effective_at")
    reason = serializers.CharField()
    customerId = serializers.CharField(source="customer.number", help_text="The customer the step concerns.")
    customerName = serializers.CharField(source="customer.name")
    readingId = serializers.IntegerField(source="reading_id", allow_null=True)
    ground = serializers.CharField(help_text="A disconnection's: on_request or non_payment; else empty.")
    orderNumber = serializers.CharField(source="order_number", help_text="A disconnection order's number.")
    overdueBalance = serializers.DecimalField(
        source="overdue_balance",
        allow_null=True,
        help_text="What was overdue when the order was issued.",
        **MONEY,
    )
    details = serializers.JSONField(
        help_text="finalInvoice and finalInvoiceId (close, move-out), incomingCustomer / outgoingCustomer "
        "(a move), reconnectionFee, fromType and toType (a change of type)."
    )
    recordedBy = serializers.SerializerMethodField()
    recordedAt = serializers.DateTimeField(source="recorded_at")

    def get_recordedBy(self, event: ConnectionEvent) -> dict | None:
        user = event.recorded_by
        return {"userId": user.pk, "name": user.name} if user else None


class LifecycleStepOutput(serializers.Serializer):
    connectionId = serializers.IntegerField()
    connectionNumber = serializers.CharField()
    status = serializers.CharField(help_text="The connection's status after the step.")
    customerId = serializers.CharField(help_text="The connection's customer after the step.")
    events = ConnectionEventOutput(many=True, help_text="The steps recorded (a move records two).")


def step_response(connection: ServiceConnection, *events: ConnectionEvent) -> Response:
    connection.refresh_from_db(fields=["status", "customer"])
    body = {
        "connectionId": connection.pk,
        "connectionNumber": connection.number,
        "status": connection.status,
        "customerId": connection.customer.number,
        "events": ConnectionEventOutput(events, many=True).data,
    }
    return Response(body, status=status.HTTP_201_CREATED)


def step_schema(
    summary: str, request: type[serializers.Serializer], *, not_found: OpenApiResponse = NOT_FOUND
) -> Any:
    return extend_schema(
        request=request,
        responses={201: LifecycleStepOutput, 404: not_found, 409: WRONG_STATUS},
        summary=summary,
    )


class ConnectionEventsApi(APIView):
    permission_classes = [Allowed.to("billing.view_connectionevent")]

    @extend_schema(
        responses={200: ConnectionEventOutput(many=True), 404: NOT_FOUND},
        summary="A connection's history: each lifecycle step with its date, reason and who recorded it",
    )
    def get(self, request: Request, connection_id: int) -> Response:
        events = connection_events_for(user=request.user, connection_id=connection_id)
        return Response(ConnectionEventOutput(events, many=True).data)


class ConnectionConnectApi(APIView):
    permission_classes = [Allowed.to("billing.connect_connection")]

    class LifecycleConnectInput(serializers.Serializer):
        takenAt = ReadingTimeField(help_text="The moment of connection, when the first reading is taken.")
        reading = RegistersInput(help_text="The meter's first reading.")
        reason = reason_field(required=False, default="Connected with its first reading.")

    @step_schema("Connect a pending connection, with its first reading", LifecycleConnectInput)
    def post(self, request: Request, connection_id: int) -> Response:
        connection = connection_get_for(user=request.user, connection_id=connection_id)
        data = self.LifecycleConnectInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        event = connection_connect(
            connection=connection,
            taken_at=values["takenAt"],
            registers=registers_of(values["reading"]),
            connected_by=request.user,
            reason=values["reason"],
        )
        return step_response(connection, event)
