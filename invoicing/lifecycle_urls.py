from django.urls import path

from invoicing import lifecycle_api

urlpatterns = [
    path(
        "connections/<int:connection_id>/disconnect",
        lifecycle_api.ConnectionDisconnectApi.as_view(),
        name="api-connection-disconnect",
    ),
    path(
        "connections/<int:connection_id>/reconnect",
        lifecycle_api.ConnectionReconnectApi.as_view(),
        name="api-connection-reconnect",
    ),
    path(
        "connections/<int:connection_id>/close",
        lifecycle_api.ConnectionCloseApi.as_view(),
        name="api-connection-close",
    ),
    path(
        "connections/<int:connection_id>/move",
        lifecycle_api.ConnectionMoveApi.as_view(),
        name="api-connection-move",
    ),
    path(
        "connections/<int:connection_id>/type-change",
        lifecycle_api.ConnectionTypeChangeApi.as_view(),
        name="api-connection-type-change",
    ),
]
