"""Calls racing on PostgreSQL: each on its own thread (so its own database connection), all released
at once by a barrier."""

import threading
from collections.abc import Callable

from django.db import connections


def start_together(calls: list[Callable[[], object]]) -> Callable[[], list[object]]:
    """Start the calls; returns a function that waits for them and gives each call's result or
    exception, in order (a thread still running after a minute is a deadlock or a lost lock)."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[object] = [None] * len(calls)

    def run(index: int, call: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=30)
            outcomes[index] = call()
        except Exception as exc:  # the test looks at every outcome
            outcomes[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, call), daemon=True) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()

    def outcomes_when_done() -> list[object]:
        for thread in threads:
            thread.join(timeout=60)
        assert not [thread for thread in threads if thread.is_alive()], "a call hung: deadlock or lost lock"
        return outcomes

    return outcomes_when_done


def run_together(calls: list[Callable[[], object]]) -> list[object]:
    """Run the calls together and give each one's result or exception, in order."""
    return start_together(calls)()
