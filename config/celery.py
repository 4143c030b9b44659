"""The Celery app. Tasks run eagerly in the embedded default and on workers when a broker is set.

Each task runs under its own request id (the task id), so its log lines and audit rows can be
traced back to one delivery.
"""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

from config import context

# Workers are production processes unless told otherwise, like wsgi.py; the demo runs tasks eagerly.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

_tokens: dict[str, object] = {}


@task_prerun.connect(dispatch_uid="config.celery.bind_task_context")
def _bind_task_context(task_id: str, **_: object) -> None:
    # Scheduled and background work acts as the system; a task acting for someone binds them itself.
    _tokens[task_id] = context.bind(request_id=task_id, actor_id=None, role="system", provider_id=None)


@task_postrun.connect(dispatch_uid="config.celery.reset_task_context")
def _reset_task_context(task_id: str, **_: object) -> None:
    token = _tokens.pop(task_id, None)
    if token is not None:
        context.reset(token)
