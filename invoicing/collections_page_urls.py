from django.urls import path

from invoicing import collections_pages

urlpatterns = [
    path(
        "connections/<int:connection_id>/collection",
        collections_pages.connection_collection,
        name="connection-collection-page",
    ),
]
