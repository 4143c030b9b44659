"""The lifecycle steps that bill or weigh money, in the API: disconnect (on request, or by a
disconnection order for non-payment), reconnect, close with the final bill, move-out / move-in, and a
change of connection type from a day no bill has covered.

The shapes (input registers, the step answer) are billing/lifecycle_api.py's.
"""

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import Allowed
from billing.api import ReadingTimeField, RegistersInput, registers_of
from billing.lifecycle import connection_disconnect
from billing.lifecycle_api import reason_field, step_response, step_schema
from billing.lifecycle_selectors import connection_type_for, incoming_customer_for
from billing.models import DisconnectionGround
from billing.selectors import connection_get_for
from invoicing import services

OPTIONAL_READING = {"required": False, "allow_null": True, "default": None}


class ConnectionDisconnectApi(APIView):
    """On request (the clerks' step), or for non-payment (an officer's disconnection order)."""

    class LifecycleDisconnectInput(serializers.Serializer):
        ground = serializers.ChoiceField(
            choices=DisconnectionGround.choices,
            default=DisconnectionGround.ON_REQUEST,
            help_text="non_payment issues a numbered disconnection order: only for an overdue balance.",
        )
        effectiveAt = ReadingTimeField(help_text="When the supply is cut.")
        reason = reason_field()
        reading = RegistersInput(help_text="The meter's reading as the supply is cut.", **OPTIONAL_READING)

    def get_permissions(self) -> list:
        non_payment = isinstance(self.request.data, dict) and (
            self.request.data.get("ground") == DisconnectionGround.NON_PAYMENT
        )
        perm = "billing.order_disconnection" if non_payment else "billing.disconnect_connection"
        return [Allowed.to(perm)()]

    @step_schema(
        "Disconnect a connection: at the customer's request, or for non-payment (a disconnection order)",
        LifecycleDisconnectInput,
    )
    def post(self, request: Request, connection_id: int) -> Response:
        connection = connection_get_for(user=request.user, connection_id=connection_id)
        data = self.LifecycleDisconnectInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        step = (
            services.disconnection_order_issue
            if values["ground"] == DisconnectionGround.NON_PAYMENT
            else connection_disconnect
        )
        event = step(
            connection=connection,
            reason=values["reason"],
            effective_at=values["effectiveAt"],
            registers=registers_of(values["reading"]),
            by=request.user,
        )
        return step_response(connection, event)


class ConnectionReconnectApi(APIView):
    permission_classes = [Allowed.to("billing.reconnect_connection")]

    class LifecycleReconnectInput(serializers.Serializer):
        effectiveAt = ReadingTimeField(help_text="When the supply is restored.")
        reason = reason_field()
        reading = RegistersInput(
            help_text="The meter's reading as the supply is restored.", **OPTIONAL_READING
        )

    @step_schema(
        "Reconnect a disconnected connection; the provider's reconnection fee goes on its next bill",
        LifecycleReconnectInput,
    )
    def post(self, request: Request, connection_id: int) -> Response:
        connection = connection_get_for(user=request.user, connection_id=connection_id)
        data = self.LifecycleReconnectInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        event = services.connection_reconnect(
            connection=connection,
            reason=values["reason"],
            effective_at=values["effectiveAt"],
            registers=registers_of(values["reading"]),
            by=request.user,
        )
        return step_response(connection, event)


class ConnectionCloseApi(APIView):
    permission_classes = [Allowed.to("billing.close_connection")]

    class LifecycleCloseInput(serializers.Serializer):
        closedAt = ReadingTimeField(
            help_text="When the final reading is taken; the final bill is dated that day."
        )
        reason = reason_field()
        reading = RegistersInput(
            help_text="The final reading (none for a connection never connected).", **OPTIONAL_READING
        )

    @step_schema(
        "Close a connection for good: the final reading and, at once, the final bill",
        LifecycleCloseInput,
    )
    def post(self, request: Request, connection_id: int) -> Response:
        connection = connection_get_for(user=request.user, connection_id=connection_id)
        data = self.LifecycleCloseInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        event = services.connection_close(
            connection=connection,
            closed_at=values["closedAt"],
            registers=registers_of(values["reading"]),
            reason=values["reason"],
            by=request.user,
        )
        return step_response(connection, event)


class ConnectionMoveApi(APIView):
    permission_classes = [Allowed.to("billing.move_connection")]

    class LifecycleMoveInput(serializers.Serializer):
        moveAt = ReadingTimeField(
            help_text="When the move-out reading is taken; the final bill is dated that day."
        )
        reading = RegistersInput(
            help_text="The move-out reading: the outgoing customer's last, the incoming's first."
        )
        incomingCustomer = serializers.CharField(
            max_length=40, help_text="The incoming customer's number as printed, e.g. LHR-RES-0002."
        )
        reason = reason_field()

    @step_schema(
        "A customer moves out and another moves in: the outgoing one's final bill to the move-out reading",
        LifecycleMoveInput,
        not_found=OpenApiResponse(
            description="No such connection, or no such incoming customer, of the caller's provider."
        ),
    )
    def post(self, request: Request, connection_id: int) -> Response:
        connection = connection_get_for(user=request.user, connection_id=connection_id)
        data = self.LifecycleMoveInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        incoming = incoming_customer_for(
            user=request.user, connection=connection, number=values["incomingCustomer"]
        )
        moved_out, moved_in = services.connection_move(
            connection=connection,
            move_at=values["moveAt"],
            registers=registers_of(values["reading"]),
            incoming_customer=incoming,
            reason=values["reason"],
            by=request.user,
        )
        return step_response(connection, moved_out, moved_in)


class ConnectionTypeChangeApi(APIView):
    permission_classes = [Allowed.to("billing.change_connection_type")]

    class LifecycleTypeChangeInput(serializers.Serializer):
        connectionType = serializers.CharField(max_length=20, help_text="The new type's code, e.g. C-1.")
        effectiveFrom = serializers.DateField(
            help_text="The first day billed on the new type: after the last day a bill covers, not after today."
        )
        reason = reason_field()

    @step_schema(
        "Change a connection's type from a day; the bill whose period holds it rates each part on its type",
        LifecycleTypeChangeInput,
        not_found=OpenApiResponse(
            description="No such connection, or no such connection type, of the caller's provider."
        ),
    )
    def post(self, request: Request, connection_id: int) -> Response:
        connection = connection_get_for(user=request.user, connection_id=connection_id)
        data = self.LifecycleTypeChangeInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        event = services.connection_type_change(
            connection=connection,
            to_type=connection_type_for(connection=connection, code=values["connectionType"]),
            effective_from=values["effectiveFrom"],
            reason=values["reason"],
            recorded_by=request.user,
        )
        return step_response(connection, event)
