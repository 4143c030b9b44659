"""gunicorn's settings for the web process (Procfile, deploy/systemd/billing-web.service): each value
from the environment, so one env file configures every host. README "Production" lists them."""

import os

# Prometheus's multiprocess mode (PROMETHEUS_MULTIPROC_DIR): the workers' counts start from none and
# a dead worker's live gauges stop counting (config.gunicorn_hooks).
from config.gunicorn_hooks import child_exit, on_starting  # noqa: F401

# Behind nginx on the same host: only nginx should reach gunicorn. `PORT` is what honcho gives the web.
bind = os.environ.get("GUNICORN_BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# A request slower than this is killed and its worker replaced: above the slowest page (a bill's PDF).
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
# On SIGTERM or a reload (SIGHUP), requests under way get this long to finish.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = 5
# A worker is replaced after this many requests (jittered, so they do not all restart at once).
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "1000"))
max_requests_jitter = max_requests // 10
# Access and error log to stdout/stderr: journald or honcho keeps them.
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
