from django.urls import path

from invoicing import collections_pages, disconnection_order_pages

urlpatterns = [
    path(
        "connections/<int:connection_id>/collection",
        collections_pages.connection_collection,
        name="connection-collection-page",
    ),
    path(
        "disconnection-orders",
        disconnection_order_pages.disconnection_order_list,
        name="disconnection-order-list",
    ),
    path(
        "disconnection-orders/<int:order_id>",
        disconnection_order_pages.disconnection_order_detail,
        name="disconnection-order-detail",
    ),
]
