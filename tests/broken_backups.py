"""The corpus of backups in `fixtures/backups/`: one valid file and the broken ones derived from it.

Each entry names the file, how it is broken, and the error and exit code an import must give.
`python -m tests.broken_backups` writes the files again after a change of the format.
"""

import copy
import gzip
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "backups"
TENANT = {"id": "5f1c2b0a-9d3e-4c4b-8a61-2f0e8f6a7c11", "name": "Corpus Quarry", "slug": "corpus"}
SITE = "0b8e6d4e-3a52-4c61-9f0c-5a4c2f1d9e01"
VEHICLE = "1c9f7e5f-4b63-4d72-a01d-6b5d3a2eaf02"

BASE: dict[str, Any] = {
    "metadata": {
        "format": "tenant-backup",
        "format_version": 1,
        "exported_at": "2026-11-01T08:00:00.000000Z",
        "tenant": TENANT,
        "app_version": "0.1.0",
        "options": {"include_audit_logs": False, "include_deleted": False},
    },
    "schema": {"version": 1, "enums": {}, "tables": {}},
    "master_data": {
        "oem": [{"id": 7, "name": "Caterpillar", "country": "US", "website": ""}],
        "equipment_model": [
            {
                "id": 3,
                "oem": 7,
                "name": "793F",
                "category": "haul_truck",
                "rated_power_kw": 1976,
                "operating_weight_t": "390.1",
            }
        ],
    },
    "tenant_data": {
        "site": [{"id": SITE, "name": "East Pit", "kind": "quarry", "is_active": True}],
        "vehicle": [
            {
                "id": VEHICLE,
                "site": SITE,
                "profile": None,
                "equipment_model": 3,
                "machine_family": None,
                "serial_number": "CAT0793FXYZ01",
                "fleet_number": "HT-01",
                "status": "active",
                "commissioned_on": "2021-03-15",
                "purchase_price": "5250000.00",
                "engine_hours": "18250.5",
                "odometer_km": None,
                "is_leased": False,
                "attributes": {"payload_t": 227, "tyres": "59/80R63"},
                "deleted_at": None,
            }
        ],
        "meter_reading": [
            {
                "id": "2da08f60-5c74-4e83-b12e-7c6e4b3fb003",
                "vehicle": VEHICLE,
                "meter_type": "engine_hours",
                "read_at": "2026-10-31T23:00:00.000000Z",
                "value": "18250.50",
                "source": "telematics",
            },
            {
                "id": "3eb19071-6d85-4f94-8c3f-8d7f5c4a0c04",
                "vehicle": VEHICLE,
                "meter_type": "engine_hours",
                "read_at": "2026-10-30T23:00:00.000000Z",
                "value": "18230.00",
                "source": "telematics",
            },
        ],
    },
    "statistics": {"site": 1, "vehicle": 1, "meter_reading": 2},
}


def _doc(change: Callable[[dict[str, Any]], None]) -> bytes:
    document = copy.deepcopy(BASE)
    change(document)
    return orjson.dumps(document)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = document
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        elif value is _DELETE:
            del node[last]
        else:
            node[last] = value

    return change


_DELETE = object()
VALID = orjson.dumps(BASE)


def _in_attributes(text: bytes) -> bytes:
    """The valid file with `text` as a value in a vehicle's attributes: text orjson would not
    write (nor would Python read), spliced in."""
    placeholder = 7_777_777_777
    content = _doc(_set("tenant_data.vehicle.0.attributes", {"payload_t": placeholder}))
    return content.replace(str(placeholder).encode(), text)


def _duplicate_reading(document: dict[str, Any]) -> None:
    readings = document["tenant_data"]["meter_reading"]
    readings[1]["id"] = readings[0]["id"]


def _duplicate_site_name(document: dict[str, Any]) -> None:
    site = dict(document["tenant_data"]["site"][0], id="4fc2a182-7e96-4aa5-9d40-9e8a6d5b1d05")
    document["tenant_data"]["site"].append(site)
    document["statistics"]["site"] = 2


@dataclass(frozen=True)
class Broken:
    name: str
    content: bytes
    exit_code: int
    message: str  # a fragment of the error or of one of its problems
    # Refused as a new tenant too (a backup of another tenant is not: restoring one is allowed).
    as_new_tenant: bool = True


CASES = [
    Broken("not-json.json", b"Vehicle,Serial\nHT-01,CAT0793F\n", 3, "not valid JSON"),
    Broken("empty.json", b"", 3, "The file is empty"),
    Broken("truncated.json", VALID[: len(VALID) * 2 // 3], 3, "ends too early"),
    Broken("garbage.json.gz", b"\x1f\x8b\x08\x00" + b"not really gzip" * 4, 3, "decompress"),
    Broken("truncated.json.gz", gzip.compress(VALID, mtime=0)[:-40], 3, "truncated gzip data"),
    Broken("not-an-object.json", b"[1, 2, 3]", 3, "not a JSON object"),
    Broken(
        "sections-out-of-order.json",
        b'{"schema": {}, "metadata": {}}',
        3,
        "where 'metadata' was expected",
    ),
    Broken("wrong-format.json", _doc(_set("metadata.format", "fleet-dump")), 3, "not a tenant"),
    Broken("newer-version.json", _doc(_set("metadata.format_version", 99)), 3, "newer than"),
    Broken("newer-schema.json", _doc(_set("schema.version", 42)), 3, "schema version 42"),
    Broken(
        "wrong-tenant.json",
        _doc(
            _set(
                "metadata.tenant",
                {"id": "9a9a9a9a-0000-4000-8000-000000000000", "name": "Acme", "slug": "acme"},
            )
        ),
        5,
        "belongs to tenant 'Acme'",
        as_new_tenant=False,
    ),
    Broken("unknown-table.json", _doc(_set("tenant_data.spaceship", [])), 4, "unknown table"),
    Broken(
        "unknown-field.json",
        _doc(_set("tenant_data.vehicle.0.colour", "yellow")),
        4,
        "unknown field",
    ),
    Broken(
        "missing-field.json",
        _doc(_set("tenant_data.vehicle.0.serial_number", _DELETE)),
        4,
        "required field missing",
    ),
    Broken(
        "wrong-type.json",
        _doc(_set("tenant_data.meter_reading.0.value", True)),
        4,
        "expected a decimal written as a string, got a boolean",
    ),
    Broken(
        "bad-datetime.json",
        _doc(_set("tenant_data.meter_reading.0.read_at", "2026-10-31 23:00:00")),
        4,
        "has no time zone",
    ),
    Broken(
        "unknown-enum.json", _doc(_set("tenant_data.vehicle.0.status", "flying")), 4, "not one of"
    ),
    Broken(
        "too-long.json",
        _doc(_set("tenant_data.vehicle.0.fleet_number", "X" * 31)),
        4,
        "at most 30 allowed",
    ),
    Broken("duplicate-id.json", _doc(_duplicate_reading), 4, "already appears in row 1"),
    Broken("duplicate-natural-key.json", _doc(_duplicate_site_name), 4, "natural key appears"),
    Broken(
        "dangling-reference.json",
        _doc(_set("tenant_data.meter_reading.1.vehicle", "7d7d7d7d-1111-4222-8333-444444444444")),
        4,
        "refers to vehicle 7d7d7d7d-1111-4222-8333-444444444444, which does not exist",
    ),
    Broken(
        "missing-master-data.json",
        _doc(_set("master_data.oem.0.name", "Imaginary Machines")),
        4,
        "OEM 'Imaginary Machines' does not exist in this database",
    ),
    Broken(
        "huge-number.json",
        _in_attributes(b"9" * 5000),
        3,
        "a number of 5000 digits, more than the 4300 an import reads",
    ),
    Broken(
        "too-deep.json",
        _in_attributes(b"[" * 300 + b"]" * 300),
        3,
        "a value nested more than 253 levels deep, in tenant_data.vehicle row 1, "
        "field 'attributes': more than an export writes",
    ),
    # Values JSON carries and Python would read, but no database stores as they are.
    Broken(
        "datetime-out-of-range.json",
        _doc(_set("tenant_data.meter_reading.0.read_at", "0001-01-01T00:00:00+01:00")),
        4,
        "is outside the years 1 to 9999 in UTC",
    ),
    Broken(
        "datetime-nanoseconds.json",
        _doc(_set("tenant_data.meter_reading.0.read_at", "2026-10-31T23:00:00.0000001Z")),
        4,
        "more than the six decimals of a second",
    ),
    Broken(
        "date-week-form.json",
        _doc(_set("tenant_data.vehicle.0.commissioned_on", "2026-W01-1")),
        4,
        "'2026-W01-1' is not a valid date (YYYY-MM-DD)",
    ),
    Broken(
        "decimal-underscore.json",
        _doc(_set("tenant_data.vehicle.0.purchase_price", "1_000")),
        4,
        "'1_000' is not a decimal number",
    ),
    Broken(
        "integer-out-of-range.json",
        _doc(_set("master_data.equipment_model.0.rated_power_kw", 2**31)),
        4,
        "2147483648 is outside the range 0 to 2147483647",
    ),
    Broken(
        "master-id-out-of-range.json",
        _doc(_set("master_data.oem.0.id", 2**63)),
        4,
        "9223372036854775808 is outside the range",
    ),
    # JSON allows a key twice in an object; which value is meant, it does not say.
    Broken(
        "duplicate-key.json",
        VALID.replace(b'"source":"telematics"}', b'"source":"telematics","value":"1.00"}', 1),
        3,
        "the key 'value' twice in one object, in tenant_data.meter_reading row 1",
    ),
    Broken(
        "duplicate-key-in-a-json-field.json",
        _in_attributes(b'1, "payload_t": 2'),
        3,
        "the key 'payload_t' twice in one object, in tenant_data.vehicle row 1, field 'attributes'",
    ),
    Broken(
        "duplicate-key-in-metadata.json",
        VALID.replace(b'"format":"tenant-backup",', b'"format":"tenant-backup","format":"x",', 1),
        3,
        "the key 'format' twice in one object, in section 'metadata'",
    ),
    Broken(
        "statistics-mismatch.json",
        _doc(_set("statistics.meter_reading", 3)),
        4,
        "statistics say 3 rows, the file has 2",
    ),
]


def write() -> None:
    CORPUS.mkdir(parents=True, exist_ok=True)
    (CORPUS / "valid.json").write_bytes(VALID)
    for case in CASES:
        (CORPUS / case.name).write_bytes(case.content)


if __name__ == "__main__":
    write()
