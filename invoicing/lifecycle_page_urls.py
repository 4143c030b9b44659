from django.urls import path

from invoicing import lifecycle_pages

urlpatterns = [
    path(
        "connections/<int:connection_id>/lifecycle",
        lifecycle_pages.connection_lifecycle,
        name="connection-lifecycle",
    ),
    path(
        "connections/<int:connection_id>/lifecycle/<slug:step_name>",
        lifecycle_pages.connection_lifecycle_step,
        name="connection-lifecycle-step",
    ),
]
