"""Realistic, seeded sample records for the three datasets in schemas/ (demo, bench, tests).

``generate_records(dataset, n, seed, withheld_share, bad_ratio)`` returns n
single-object Avro values. About ``withheld_share`` of the valid records trip
the withhold rules of the sample corridors.yaml (no consent, strategic or
dual-use goods, identity numbers, minors, restricted goods); about
``bad_ratio`` of all values are bad: half garbage bytes (bad magic, truncated
bodies, unknown fingerprints), half well-formed records failing the dataset's
``validate`` rule (a negative customs value or shipping fee; ``media.playback``
has no validate rule, so all its bad values are garbage). Same arguments, same
bytes. ``generate_rows`` gives the valid records as Python dicts.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastavro

from corridor.core.schema import AvroSchema, frame, load_schema

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
_EPOCH = datetime(2025, 3, 1, tzinfo=UTC)
_FIRST = [
    "Wing",
    "Mei",
    "Ka Ho",
    "Siew Ling",
    "Anna",
    "Lukas",
    "Nguyen",
    "Arjun",
    "Sofia",
    "Hiroshi",
    "Chloé",
    "Jörg",
    "Putri",
    "Somchai",
    "Li Na",
    "Marco",
    "Aisyah",
    "Tomás",
]
_LAST = [
    "Chan",
    "Wong",
    "Lee",
    "Tan",
    "Lim",
    "Müller",
    "Schmidt",
    "Tran",
    "Sharma",
    "Rossi",
    "Dubois",
    "Sato",
    "Santoso",
    "Srisuk",
    "Zhang",
    "García",
    "Rahman",
    "Novak",
]
_DECLARANTS = [
    "Pearl Delta Logistics Ltd",
    "Kowloon Freight Co",
    "Lion City Traders Pte",
    "Rhine Import GmbH",
    "Saigon Export JSC",
    "Andaman Shipping Co",
    "Lantau Components",
    "Baltic Forwarding BV",
    "Selangor Electronics Sdn Bhd",
    "Bangkok Agri Export",
]
_GOODS = [
    ("851712", "smartphones"),
    ("847130", "laptop computers"),
    ("080450", "fresh mangoes"),
    ("090111", "green coffee beans"),
    ("300490", "packaged medicines"),
    ("854231", "integrated circuits, processors"),
    ("880240", "aircraft parts"),
    ("610910", "cotton t-shirts"),
    ("940360", "wooden furniture"),
    ("281511", "caustic soda"),
]
_PORTS = [
    ("HKHKG", "HK"),
    ("SGSIN", "SG"),
    ("NLRTM", "NL"),
    ("DEHAM", "DE"),
    ("VNSGN", "VN"),
    ("MYPKG", "MY"),
    ("THLCH", "TH"),
    ("CNSZX", "CN"),
]
_COUNTRIES = ["HK", "SG", "DE", "NL", "FR", "VN", "MY", "TH", "CN", "ID"]
_CURRENCIES = ["HKD", "EUR", "SGD", "USD", "CNY", "MYR", "THB", "VND"]


def _name(r: random.Random) -> str:
    return f"{r.choice(_FIRST)} {r.choice(_LAST)}"


def _email(r: random.Random, name: str, domain: str) -> str:
    return name.lower().replace(" ", ".").encode("ascii", "ignore").decode() + "@" + domain


def _shipment(r: random.Random, i: int, trip: bool) -> dict[str, Any]:
    hs, desc = r.choice(_GOODS)
    port, port_country = r.choice(_PORTS)
    declarant = r.choice(_DECLARANTS)
    name = _name(r)
    category = r.choices(["general", "perishable", "hazardous"], [8, 3, 1])[0]
    consent = True
    if trip:
        if r.random() < 0.5:
            consent = False
        else:
            category = r.choice(["strategic", "dual_use"])
    domain = declarant.split()[0].lower() + ".example"
    return {
        "shipment_id": f"DEC-{2025}-{i:08d}",
        "declarant": declarant,
        "contact_name": name,
        "contact_email": None if r.random() < 0.05 else _email(r, name, domain),
        "national_id": f"{r.choice('ABCDEGKPRZ')}{r.randrange(100000, 999999)}({r.randrange(10)})",
        "hs_code": hs,
        "description": desc,
        "declared_value": round(r.lognormvariate(9, 1.2), 2),
        "currency": r.choice(_CURRENCIES),
        "category": category,
        "origin_country": port_country,
        "destination_country": r.choice(_COUNTRIES),
        "location": {"port": port, "country": port_country},
        "consent": consent,
        "declared_at": _EPOCH + timedelta(seconds=i * 7 + r.randrange(7)),
    }


def _order(r: random.Random, i: int, trip: bool) -> dict[str, Any]:
    name = _name(r)
    items: list[dict[str, Any]] = [
        {
            "sku": f"SKU-{r.randrange(10**6):06d}",
            "description": r.choice(_GOODS)[1],
            "quantity": r.randrange(1, 5),
            "unit_price": Decimal(r.randrange(100, 200000)) / 100,
        }
        for _ in range(r.randrange(1, 4))
    ]
    total = sum((it["unit_price"] * it["quantity"] for it in items), Decimal(0))
    consent, id_number, category = (
        True,
        None,
        r.choice(["standard", "electronics", "luxury", "pharma"]),
    )
    if trip:
        pick = r.random()
        consent = pick >= 0.4
        if 0.4 <= pick < 0.7:
            id_number = f"{r.choice('GSTF')}{r.randrange(10**7):07d}{r.choice('ABCDJKLMXZ')}"
        elif pick >= 0.7:
            category = "restricted"
    return {
        "order_id": f"ORD-{i:09d}",
        "marketplace": r.choice(["shopee", "lazada", "tmall", "amazon.de"]),
        "buyer_name": name,
        "buyer_email": _email(r, name, "mail.example"),
        "buyer_phone": None
        if r.random() < 0.2
        else f"+{r.choice([852, 65, 49, 84])} {r.randrange(10**7, 10**8)}",
        "id_number": id_number,
        "shipping_address": {
            "line1": f"{r.randrange(1, 300)} {r.choice(['Nathan Road', 'Orchard Road', 'Hauptstraße', 'Le Loi'])}",
            "city": r.choice(["Hong Kong", "Singapore", "Berlin", "Ho Chi Minh City"]),
            "postcode": None if r.random() < 0.3 else str(r.randrange(10000, 99999)),
            "country": r.choice(_COUNTRIES),
        },
        "currency": r.choice(_CURRENCIES),
        "total_amount": total,
        "shipping_fee": round(r.uniform(0, 40), 2),
        "items": items,
        "category": category,
        "high_value": bool(total > 1500) and trip,
        "consent": consent,
        "placed_at": _EPOCH + timedelta(seconds=i * 3),
    }


def _playback(r: random.Random, i: int, trip: bool) -> dict[str, Any]:
    kind = r.choice(["micro_drama", "series", "game"])
    consent, minor = True, False
    if trip:
        consent, minor = (False, False) if r.random() < 0.5 else (True, True)
    return {
        "event_id": f"evt-{i:010d}",
        "user_id": f"u{r.randrange(50000):07d}",
        "device_id": f"dev-{r.randrange(1 << 40):010x}",
        "ip_address": None
        if r.random() < 0.1
        else f"{r.randrange(1, 224)}.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}",
        "title_id": f"t{r.randrange(2000):05d}",
        "content_kind": kind,
        "episode": None if r.random() < 0.1 else r.randrange(1, 80),
        "watch_seconds": round(r.expovariate(1 / 90), 1),
        "country": r.choice(_COUNTRIES),
        "client": {
            "platform": r.choice(["ios", "android", "web", "tv", "console"]),
            "app_version": f"{r.randrange(3, 6)}.{r.randrange(20)}.{r.randrange(10)}",
        },
        "is_minor": minor,
        "consent": consent,
        "event_time": _EPOCH + timedelta(milliseconds=i * 250),
    }


_MAKERS: dict[str, Callable[[random.Random, int, bool], dict[str, Any]]] = {
    "trade.shipment": _shipment,
    "ecommerce.order": _order,
    "media.playback": _playback,
}
_INVALID: dict[str, Callable[[dict[str, Any]], None]] = {
    "trade.shipment": lambda rec: rec.update(declared_value=-abs(rec["declared_value"]) - 1),
    "ecommerce.order": lambda rec: rec.update(shipping_fee=-5.0),
}


def _schema(dataset: Any) -> AvroSchema:
    if isinstance(dataset, AvroSchema):
        return dataset
    if isinstance(dataset, str):
        namespace, name = dataset.split(".", 1)
        return load_schema(SCHEMAS / namespace / f"{name}.avsc")
    return dataset.schema  # a config Dataset


def generate_rows(
    dataset: Any, n: int, seed: int = 0, withheld_share: float = 0.1
) -> list[dict[str, Any]]:
    """n valid records of *dataset* (a name, a config Dataset or its AvroSchema) as dicts."""
    schema = _schema(dataset)
    make = _MAKERS[schema.name]
    r = random.Random(seed)
    return [make(r, i, r.random() < withheld_share) for i in range(n)]


# The personal identifier a park keys each dataset's records by (one person's events in order).
KEY_FIELDS = {
    "trade.shipment": "national_id",
    "ecommerce.order": "buyer_email",
    "media.playback": "user_id",
}


def generate_keys(dataset: Any, n: int, seed: int = 0,
                  withheld_share: float = 0.1) -> list[bytes | None]:
    """The keys a park would give ``generate_records(dataset, n, seed, withheld_share)``:
    each record's personal identifier (``KEY_FIELDS``), UTF-8; None where it is null."""
    schema = _schema(dataset)
    field = KEY_FIELDS.get(schema.name)
    if field is None:
        return [None] * n
    rows = generate_rows(schema, n, seed, withheld_share)
    return [None if r.get(field) is None else str(r[field]).encode() for r in rows]


def generate_records(
    dataset: Any, n: int, seed: int = 0, withheld_share: float = 0.1, bad_ratio: float = 0.0
) -> list[bytes]:
    """n single-object Avro values (see the module docstring)."""
    schema = _schema(dataset)
    rows = generate_rows(schema, n, seed, withheld_share)
    r = random.Random(seed ^ 0x5EED)
    invalid = _INVALID.get(schema.name)
    out = []
    for rec in rows:
        bad = r.random() < bad_ratio
        if bad and (invalid is None or r.random() < 0.5):
            out.append(_garbage(r, schema, encode(rec, schema)))
            continue
        if bad and invalid is not None:
            invalid(rec)
        out.append(encode(rec, schema))
    return out


def encode(record: dict[str, Any], schema: AvroSchema) -> bytes:
    """One single-object Avro value (fastavro body)."""
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema.parsed, record)
    return frame(schema.fingerprint, buf.getvalue())


def _garbage(r: random.Random, schema: AvroSchema, good: bytes) -> bytes:
    kind = r.randrange(4)
    if kind == 0:
        return bytes(r.randrange(256) for _ in range(r.randrange(1, 40)))  # no header at all
    if kind == 1:
        return good[: r.randrange(10, len(good) - 1)]  # truncated body
    if kind == 2:
        return frame(bytes(r.randrange(256) for _ in range(8)), good[10:])  # unknown schema
    return good + b"\x00"  # trailing byte after the datum
