"""gunicorn server hooks for Prometheus's multiprocess mode (config.metrics); a gunicorn config
file names them: `from config.gunicorn_hooks import on_starting, child_exit  # noqa: F401`."""

import os
import shutil
from pathlib import Path

from prometheus_client import multiprocess


def on_starting(server: object) -> None:
    # Counts left by an earlier run of the server would be added to this one's: start from none.
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        Path(folder).mkdir(parents=True)


def child_exit(server: object, worker: object) -> None:
    # A dead worker's live gauges must stop counting; its counters and histograms are kept.
    multiprocess.mark_process_dead(worker.pid)
