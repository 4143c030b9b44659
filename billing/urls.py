from django.urls import path

from billing import api

urlpatterns = [
    path("connections", api.ConnectionListApi.as_view(), name="connections"),
    path(
        "connections/<int:connection_id>/readings",
        api.ConnectionReadingsApi.as_view(),
        name="connection-readings",
    ),
    path(
        "connections/<int:connection_id>/meter-exchanges",
        api.ConnectionMeterExchangesApi.as_view(),
        name="connection-meter-exchanges",
    ),
    path("readings/upload", api.ReadingUploadApi.as_view(), name="readings-upload"),
    path("calculator", api.CalculatorApi.as_view(), name="calculator"),
]
