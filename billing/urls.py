from django.urls import path

from billing import api

urlpatterns = [
    path("customers", api.CustomerCollectionApi.as_view(), name="api-customers"),
    path("customers/import", api.CustomerImportApi.as_view(), name="api-customers-import"),
    path("customers/<int:customer_id>", api.CustomerItemApi.as_view(), name="api-customer"),
    path("connections", api.ConnectionCollectionApi.as_view(), name="connections"),
    path("connections/<int:connection_id>", api.ConnectionItemApi.as_view(), name="api-connection"),
    path(
        "connections/<int:connection_id>/income",
        api.ConnectionIncomeApi.as_view(),
        name="api-connection-income",
    ),
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
    path("customers/<int:customer_id>/invite", api.CustomerInviteApi.as_view(), name="customer-invite"),
    path("me/profile", api.MyProfileApi.as_view(), name="my-profile"),
    path("me/connections", api.MyConnectionListApi.as_view(), name="my-connections"),
    path("me/connections/<int:connection_id>/readings", api.MyReadingsApi.as_view(), name="my-readings"),
]
