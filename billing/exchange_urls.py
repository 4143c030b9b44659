from django.urls import path

from billing import exchange_pages

urlpatterns = [
    path("meter-exchanges", exchange_pages.exchange_list, name="meter-exchanges"),
    path("meter-exchanges/new", exchange_pages.exchange_new, name="meter-exchange-new"),
]
