"""Collections in the API: the provider's dunning levels (set in Django admin by its administrator), a
connection's collection status (its debt, the dunning steps taken, its payment plans), a payment
plan made by an officer, and the disconnection orders the field staff carry out."""

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import Allowed
from billing.api import ReadingTimeField, RegistersInput, registers_of
from billing.selectors import connection_get_for
from invoicing import services
from invoicing.api import ERRORS, MONEY
from invoicing.collection_selectors import (
    collection_status,
    disconnection_order_get_for,
    disconnection_order_list_for,
    dunning_level_list_for,
)
from invoicing.models import DisconnectionOrder, DisconnectionOrderStatus, DunningLevel


class DunningLevelOutput(serializers.Serializer):
    levelId = serializers.IntegerField(source="pk")
    daysAfterDue = serializers.IntegerField(source="days_after_due")
    action = serializers.CharField()
    active = serializers.BooleanField(source="is_active")


class DunningLevelListApi(generics.ListAPIView):
    """The caller's provider's dunning levels, in the order a debt climbs them."""

    permission_classes = [Allowed.to("invoicing.view_dunninglevel")]
    serializer_class = DunningLevelOutput
    pagination_class = None

    def get_queryset(self) -> QuerySet[DunningLevel]:
        return dunning_level_list_for(user=self.request.user)


class StepOutput(serializers.Serializer):
    stepId = serializers.IntegerField(source="pk")
    action = serializers.CharField()
    daysAfterDue = serializers.IntegerField(source="level.days_after_due")
    takenOn = serializers.DateField(source="taken_on")
    daysOverdue = serializers.IntegerField(source="days_overdue")
    balance = serializers.DecimalField(**MONEY)
    bills = serializers.SerializerMethodField()
    noticeId = serializers.IntegerField(source="notice_id", allow_null=True)
    noticeStatus = serializers.CharField(source="notice.status", default=None, allow_null=True)
    orderNumber = serializers.CharField(source="order_number")
    note = serializers.CharField()

    def get_bills(self, step: Any) -> list[str]:
        return [invoice.number for invoice in step.invoices.all()]


class InstalmentOutput(serializers.Serializer):
    position = serializers.IntegerField(source="instalment.position")
    dueDate = serializers.DateField(source="instalment.due_date")
    amount = serializers.DecimalField(source="instalment.amount", **MONEY)
    covered = serializers.DecimalField(**MONEY)
    missed = serializers.BooleanField()


class PlanOutput(serializers.Serializer):
    planId = serializers.IntegerField(source="plan.pk")
    status = serializers.CharField(source="plan.status")
    arrears = serializers.DecimalField(source="plan.arrears", **MONEY)
    paid = serializers.DecimalField(**MONEY)
    reason = serializers.CharField(source="plan.reason")
    createdBy = serializers.CharField(source="plan.created_by.name")
    createdAt = serializers.DateTimeField(source="plan.created_at")
    endedOn = serializers.DateField(source="plan.ended_on", allow_null=True)
    instalments = InstalmentOutput(many=True)


class CaseOutput(serializers.Serializer):
    openedOn = serializers.DateField(source="opened_on")
    levelReached = DunningLevelOutput(source="level", allow_null=True)
    lastStepOn = serializers.DateField(source="last_step_on", allow_null=True)


class CollectionOutput(serializers.Serializer):
    connectionId = serializers.IntegerField(source="connection.pk")
    connectionNumber = serializers.CharField(source="connection.number")
    overdue = serializers.DecimalField(**MONEY, help_text="Owed now on bills unpaid after their due date.")
    openCase = CaseOutput(source="case", allow_null=True, help_text="The debt being chased; null if none.")
    steps = StepOutput(many=True, help_text="Every dunning step taken for the connection, newest first.")
    plans = PlanOutput(many=True, help_text="Its payment plans, newest first.")


class ConnectionCollectionApi(APIView):
    permission_classes = [Allowed.to("invoicing.view_dunningstep")]

    @extend_schema(responses={200: CollectionOutput, **ERRORS}, summary="A connection's collection status")
    def get(self, request: Request, connection_id: int) -> Response:
        connection = connection_get_for(user=request.user, connection_id=connection_id)
        return Response(CollectionOutput(collection_status(connection)).data)


class PaymentPlanInput(serializers.Serializer):
    instalments = serializers.IntegerField(
        help_text=f"How many monthly instalments: 1 to {services.PLAN_MAX_INSTALMENTS}."
    )
    firstDueDate = serializers.DateField(
        help_text="The first instalment's due date; the others monthly after."
    )
    reason = serializers.CharField(max_length=300)


class PaymentPlanCreateApi(APIView):
    """An officer (Super_Creator, Admin) spreads a connection's arrears over instalments."""

    permission_classes = [Allowed.to("invoicing.add_paymentplan")]

    @extend_schema(
        request=PaymentPlanInput,
        responses={201: CollectionOutput, **ERRORS},
        summary="Spread a connection's arrears over instalments (officers)",
    )
    def post(self, request: Request, connection_id: int) -> Response:
        connection = connection_get_for(user=request.user, connection_id=connection_id)
        data = PaymentPlanInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        services.payment_plan_create(
            connection=connection,
            instalments=values["instalments"],
            first_due_date=values["firstDueDate"],
            reason=values["reason"],
            created_by=request.user,
        )
        return Response(CollectionOutput(collection_status(connection)).data, status=201)


class DisconnectionOrderOutput(serializers.Serializer):
    orderId = serializers.IntegerField(source="pk")
    number = serializers.CharField()
    status = serializers.CharField()
    issuedOn = serializers.DateField(source="issued_on")
    connectionId = serializers.IntegerField(source="connection_id")
    connectionNumber = serializers.CharField(source="connection.number")
    meterNumber = serializers.CharField(source="connection.meter_number")
    subdivision = serializers.CharField(source="connection.subdivision")
    customerName = serializers.CharField(source="customer.name")
    address = serializers.CharField(
        source="customer.address", help_text="The customer's, where the visit goes."
    )
    overdueBalance = serializers.DecimalField(
        source="overdue_balance", **MONEY, help_text="What was overdue when the order was issued."
    )
    reason = serializers.CharField()
    disconnectedAt = serializers.DateTimeField(source="event.effective_at", default=None, allow_null=True)
    closedAt = serializers.DateTimeField(source="closed_at", allow_null=True)
    withdrawnReason = serializers.CharField(source="withdrawn_reason")


class DisconnectionOrderListApi(generics.ListAPIView):
    """The provider's disconnection orders, oldest first: `?status=open` is the field staff's round."""

    permission_classes = [Allowed.to("invoicing.view_disconnectionorder")]
    serializer_class = DisconnectionOrderOutput

    class OrderFilter(serializers.Serializer):
        status = serializers.ChoiceField(choices=DisconnectionOrderStatus.choices, required=False)

    @extend_schema(parameters=[OrderFilter], summary="Disconnection orders for non-payment")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[DisconnectionOrder]:
        query = self.OrderFilter(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return disconnection_order_list_for(
            user=self.request.user, status=query.validated_data.get("status", "")
        )


class DisconnectionOrderCarryOutInput(serializers.Serializer):
    effectiveAt = ReadingTimeField(help_text="When the supply is cut.")
    reading = RegistersInput(
        help_text="The meter's reading as the supply is cut.", required=False, allow_null=True, default=None
    )
    note = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)


class DisconnectionOrderCarryOutApi(APIView):
    """Field staff at the meter cut the supply on an open order. When the debt was paid, or covered by
    a kept payment plan, or the connection is no longer connected, the order is withdrawn instead (the
    answer's status says which)."""

    permission_classes = [Allowed.to("invoicing.carry_out_disconnectionorder")]

    @extend_schema(
        request=DisconnectionOrderCarryOutInput,
        responses={200: DisconnectionOrderOutput, **ERRORS},
        summary="Carry out a disconnection order on site",
    )
    def post(self, request: Request, order_id: int) -> Response:
        order = disconnection_order_get_for(user=request.user, order_id=order_id)
        data = DisconnectionOrderCarryOutInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        order = services.disconnection_order_carry_out(
            order=order,
            effective_at=values["effectiveAt"],
            registers=registers_of(values["reading"]),
            note=values["note"],
            by=request.user,
        )
        order = disconnection_order_get_for(user=request.user, order_id=order.pk)
        return Response(DisconnectionOrderOutput(order).data)
