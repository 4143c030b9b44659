"""The administrators' pages, under /manage/: users and their roles, providers and their prices."""

from django.urls import path

from accounts import manage_pages

urlpatterns = [
    path("users", manage_pages.user_list, name="manage-users"),
    path("users/new", manage_pages.user_new, name="user-create"),
    path("users/<int:user_id>", manage_pages.user_detail, name="user-detail"),
    path("providers", manage_pages.provider_list, name="manage-providers"),
    path("providers/<int:provider_id>", manage_pages.provider_detail, name="provider-detail"),
    path("providers/<int:provider_id>/prices", manage_pages.provider_prices, name="provider-prices"),
]
