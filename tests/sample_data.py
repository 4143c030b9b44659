"""The shared sample company (`../shared/data/`), read once, as the tests and benchmarks use it."""

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from billing.rating import Reading

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SAMPLE_PATH = DATA / "disco_sample.json"
SAMPLE = json.loads(SAMPLE_PATH.read_text())
EXAMPLES = json.loads((DATA / "disco_expected_examples.json").read_text())["bills"]
CONNECTION_TYPES = {c["connection_id"]: str(c["connection_type_code"]) for c in SAMPLE["connections"]}


def readings_by_connection() -> dict[str, list[Reading]]:
    """Every meter reading of the sample, as the rating engine takes them (numbers read as written)."""
    readings: dict[str, list[Reading]] = {}
    for row in SAMPLE["meter_readings"]:
        readings.setdefault(row["connection_id"], []).append(
            Reading(
                at=datetime.fromisoformat(row["timestamp"]),
                import_peak=Decimal(str(row["import_peak"])),
                import_off_peak=Decimal(str(row["import_off_peak"])),
                export_peak=Decimal(str(row["export_peak"])),
                export_off_peak=Decimal(str(row["export_off_peak"])),
            )
        )
    return readings
