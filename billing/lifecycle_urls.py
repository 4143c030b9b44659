from django.urls import path

from billing import lifecycle_api

urlpatterns = [
    path(
        "connections/<int:connection_id>/events",
        lifecycle_api.ConnectionEventsApi.as_view(),
        name="api-connection-events",
    ),
    path(
        "connections/<int:connection_id>/connect",
        lifecycle_api.ConnectionConnectApi.as_view(),
        name="api-connection-connect",
    ),
]
