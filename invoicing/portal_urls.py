from django.urls import path

from invoicing import portal

urlpatterns = [
    path("", portal.portal_home, name="portal-home"),
    path("bills/<int:invoice_id>", portal.portal_bill, name="portal-bill"),
    path("payments", portal.portal_payments, name="portal-payments"),
    path("calculator", portal.usage_calculator, name="usage-calculator"),
    path("profile", portal.portal_profile, name="portal-profile"),
    path("connections/<int:connection_id>/reading", portal.portal_reading, name="portal-reading"),
]
