from django.urls import path

from billing import pages

urlpatterns = [
    path("customers", pages.customer_list, name="customer-list"),
    path("customers/new", pages.customer_new, name="customer-new"),
    path("customers/import", pages.customer_import, name="customer-import"),
    path("customers/<int:customer_id>", pages.customer_detail, name="customer-detail"),
    path("customers/<int:customer_id>/edit", pages.customer_edit, name="customer-edit"),
    path("customers/<int:customer_id>/connections/new", pages.connection_new, name="connection-new"),
    path("connections/<int:connection_id>", pages.connection_detail, name="connection-detail"),
    path("connections/<int:connection_id>/edit", pages.connection_edit, name="connection-edit"),
    path("connections/<int:connection_id>/income", pages.connection_income, name="connection-income"),
    path("connections/<int:connection_id>/connect", pages.connection_connect, name="connection-connect"),
]
