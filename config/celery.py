"""The Celery app. Tasks run eagerly in the embedded default and on workers when a broker is set.

Each task runs under its own request id (the task id), so its log lines and audit rows can be
traced back to one delivery. Workers log through Django's LOGGING (JSON in production), not Celery's
own format, and record a heartbeat that `/readyz` reads (config.heartbeat).
"""

import logging.config
import os

from celery import Celery
from celery.signals import setup_logging, task_postrun, task_prerun
from django.conf import settings

from config import context
from config.heartbeat import WorkerHeartbeat

# Workers are production processes unless told otherwise, like wsgi.py; the demo runs tasks eagerly.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.steps["consumer"].add(WorkerHeartbeat)

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


@setup_logging.connect(dispatch_uid="config.celery.django_logging")
def _django_logging(**_: object) -> None:
    # A receiver here stops Celery from replacing the root logger's handlers with its own format.
    logging.config.dictConfig(settings.LOGGING)
