from django.urls import path

from invoicing import collections_api

urlpatterns = [
    path("dunning-levels", collections_api.DunningLevelListApi.as_view(), name="dunning-levels"),
    path(
        "connections/<int:connection_id>/collection",
        collections_api.ConnectionCollectionApi.as_view(),
        name="connection-collection",
    ),
    path(
        "connections/<int:connection_id>/payment-plans",
        collections_api.PaymentPlanCreateApi.as_view(),
        name="connection-payment-plans",
    ),
    path(
        "disconnection-orders",
        collections_api.DisconnectionOrderListApi.as_view(),
        name="disconnection-orders",
    ),
    path(
        "disconnection-orders/<int:order_id>/carry-out",
        collections_api.DisconnectionOrderCarryOutApi.as_view(),
        name="disconnection-order-carry-out",
    ),
]
