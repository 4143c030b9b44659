from django.urls import path

from providers import api

urlpatterns = [
    path("admin/providers", api.ProviderCreateApi.as_view(), name="admin-providers"),
    path("admin/providers/<int:provider_id>", api.ProviderDetailApi.as_view(), name="admin-provider"),
    path(
        "admin/providers/<int:provider_id>/price", api.ProviderPriceApi.as_view(), name="admin-provider-price"
    ),
    path("audit/pricing-history", api.PricingHistoryApi.as_view(), name="audit-pricing-history"),
    path("providers/<int:provider_id>/schedule", api.ScheduleApi.as_view(), name="provider-schedule"),
    path(
        "providers/<int:provider_id>/tariff-changes",
        api.TariffChangeApi.as_view(),
        name="provider-tariff-changes",
    ),
    path(
        "providers/<int:provider_id>/connection-types",
        api.ConnectionTypesApi.as_view(),
        name="provider-connection-types",
    ),
    *[
        path(
            f"providers/<int:provider_id>/{kind}",
            api.rows_api(kind).as_view(),
            name=f"provider-{kind}",
        )
        for kind in api.KINDS
    ],
    *[
        path(
            f"providers/<int:provider_id>/{kind}/<int:row_id>/close",
            api.row_close_api(kind).as_view(),
            name=f"provider-{kind}-close",
        )
        for kind in api.KINDS
        if kind != "tariffs"  # tariffs change through tariff-changes, which keeps their history
    ],
]
