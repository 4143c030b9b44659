from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config import health, metrics

handler400 = "config.errors.bad_request"
handler403 = "config.errors.permission_denied"
handler404 = "config.errors.not_found"
handler500 = "config.errors.internal_error"

admin.site.site_header = "Electricity billing administration"
admin.site.site_title = "Billing admin"

urlpatterns = [
    # For probes and Prometheus: no sign-in (metrics take their own token).
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    # Pages: the staff's, the officers' and the customer portal (server-rendered, session sign-in).
    path("", include("accounts.page_urls")),
    path("", include("billing.page_urls")),
    path("", include("invoicing.page_urls")),
    path("", include("invoicing.lifecycle_page_urls")),
    path("", include("invoicing.books_page_urls")),
    path("", include("invoicing.collections_page_urls")),
    path("", include("billing.exchange_urls")),
    path("portal/", include("invoicing.portal_urls")),
    path("audit/", include("auditing.page_urls")),
    path("admin/", admin.site.urls),
    # Django's set_language: the language switch of someone who chose none on their profile (a cookie).
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include("accounts.urls")),
    path("api/", include("providers.urls")),
    path("api/", include("billing.urls")),
    path("api/", include("billing.lifecycle_urls")),
    path("api/", include("invoicing.urls")),
    path("api/", include("invoicing.lifecycle_urls")),
    path("api/", include("invoicing.books_urls")),
    path("api/", include("invoicing.collections_urls")),
    path("api/", include("auditing.urls")),
]
