from django.urls import path

from billing import api

urlpatterns = [
    path("connections", api.ConnectionListApi.as_view(), name="connections"),
    path(
        "connections/<int:connection_id>/readings",
        api.ConnectionReadingsApi.as_view(),
        name="connection-readings",
    ),
    path("connections/<int:connection_id>/bill-preview", api.BillPreviewApi.as_view(), name="bill-preview"),
    path("readings/upload", api.ReadingUploadApi.as_view(), name="readings-upload"),
    path("calculator", api.CalculatorApi.as_view(), name="calculator"),
    path("customers/<int:customer_id>/invite", api.CustomerInviteApi.as_view(), name="customer-invite"),
    path("me/profile", api.MyProfileApi.as_view(), name="my-profile"),
    path("me/connections", api.MyConnectionListApi.as_view(), name="my-connections"),
    path("me/connections/<int:connection_id>/readings", api.MyReadingsApi.as_view(), name="my-readings"),
]
