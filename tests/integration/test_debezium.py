"""PostgreSQL through Debezium on Kafka Connect into a park topic, across a corridor, into
DuckDB: real PostgreSQL 15, a real Connect worker running the Debezium connector, real brokers.

Rows inserted (the initial snapshot, then streamed), updated and deleted in a PostgreSQL
table reach ``<zone>.outbound.crm.customer`` as JSON rows and tombstones; the corridor
pseudonymizes, encrypts, masks and drops the personal columns, withholds rows without
consent, and lets each delete cross as a tombstone under its pseudonymized key; the DuckDB
sink lands exactly what was delivered and deletes the deleted customers' rows; `corridor
verify` accounts for every record, tombstones among the delivered. Every principal is the file's own
least-privileged one (the park writes through Connect with its single grant).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from connectors.debezium.config import Capture as CaptureSpec
from connectors.debezium.postgres import LocalPostgres
from corridor.core import topics
from corridor.core.config import load_config
from corridor.core.model import Lineage
from corridor.kafka.acl_sync import drop_principals, sync_acls
from corridor.kafka.io import read_to_end, watermarks
from corridor.keys.local import LocalKekProvider
from corridor.processor.resolve import zone_endpoint
from corridor.zones.credentials import load_or_create_credentials

from .corridor_env import REPO, CorridorEnv, drop_topics
from .processor_env import Processor, verify, wait_until

pytestmark = pytest.mark.integration

DATASET = "crm.customer"
PG_PORT, REST_PORT = 15433, 18193
SNAPSHOT, LOAD, UPDATED, DELETED = 1000, 20_000, 300, 200
TEMPLATE = """\
zones:
  {origin}: {{bootstrap: "{ob}", jurisdiction: HK, keys: {{provider: local, path: "{keys}"}}}}
  {dest}: {{bootstrap: "{db}", jurisdiction: EU, keys: {{provider: local, path: "{keys}"}}}}
datasets:
  crm.customer:
    schema: {repo}/schemas/crm/customer.avsc
    fields: {{full_name: personal, email: personal, phone: personal, national_id: sensitive,
              country: public, segment: public}}
corridors:
  {name}:
    from: {origin}
    to: {dest}
    datasets: [crm.customer]
    legal_basis: TEST-BASIS
    withhold: "consent == false"
    transform: {{full_name: pseudonymize, email: encrypt, phone: mask, national_id: drop}}
"""
TABLE = """
CREATE TABLE customer (
  customer_id text PRIMARY KEY, full_name text NOT NULL, email text, phone text,
  national_id text NOT NULL, country text NOT NULL, segment text NOT NULL,
  credit_limit numeric(12,2) NOT NULL, consent boolean NOT NULL,
  updated_at timestamptz(3) NOT NULL DEFAULT now())
"""


def rows_sql(first: int, last: int) -> str:
    """Customers first..last: one in 7 without email, one in 5 without phone, one in 10
    without consent."""
    return f"""
INSERT INTO customer SELECT 'C' || lpad(i::text, 6, '0'), 'Name ' || i,
  CASE WHEN i % 7 = 0 THEN NULL ELSE 'user' || i || '@mail.example' END,
  CASE WHEN i % 5 = 0 THEN NULL ELSE '+852 5' || lpad(i::text, 7, '0') END,
  'ID' || lpad(i::text, 8, '0'), (ARRAY['HK','SG','DE'])[1 + i % 3],
  (ARRAY['retail','business','vip'])[1 + i % 3], (i % 1000) * 10.25, i % 10 <> 3, now()
FROM generate_series({first}, {last}) AS i"""


def corridor_cli(args: list[str], env: dict[str, str], timeout_s: float = 240) -> dict[str, Any]:
    """Run `corridor ARGS -o json`; its document, plus ``_stderr`` (its log)."""
    done = subprocess.run([sys.executable, "-m", "corridor.cli", *args], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=timeout_s)
    assert done.returncode == 0, f"{' '.join(args[:4])}: {done.stderr[-3000:]}"
    return {**json.loads(done.stdout), "_stderr": done.stderr}


@dataclass
class Capture:
    env: CorridorEnv
    pg: LocalPostgres
    run_env: dict[str, str]  # the subprocesses' environment (own credentials file)
    capture_args: list[str]
    started: dict[str, Any]


@pytest.fixture(scope="module")
def capture(zones, tmp_path_factory) -> Iterator[Capture]:
    from corridor.commands.provision import provision_topics

    tmp = tmp_path_factory.mktemp("debezium")
    tag = uuid.uuid4().hex[:8]
    origin, dest, name = f"o{tag}", f"d{tag}", f"c{tag}"
    path = tmp / "corridors.yaml"
    path.write_text(TEMPLATE.format(origin=origin, dest=dest, name=name, keys=tmp / "keys",
                                    repo=REPO, ob=zones.endpoint("hk").bootstrap,
                                    db=zones.endpoint("eu").bootstrap))
    env = CorridorEnv(path, load_config(path), name, origin, dest, tmp / "keys")
    provision_topics(str(path), 3)
    LocalKekProvider(env.keys).init(dest)
    # Test principals in a credentials file of our own (the real admin in it), as test_acl.
    creds_path = tmp / "credentials.json"
    creds_path.touch(mode=0o600)
    creds_path.write_text(json.dumps({"admin": {"password": zones.credentials.admin.secret}}))
    creds = load_or_create_credentials(creds_path)
    endpoints = {z: zone_endpoint(env.config, z) for z in env.config.zones}
    sync_acls(env.config, endpoints, creds)
    # The server runs as `postgres`, which cannot enter pytest's 0700 folders.
    pg = LocalPostgres(Path(tempfile.mkdtemp(prefix="corridor-pg-")), PG_PORT)
    run_env = {**os.environ, "CORRIDOR_HOME": str(REPO), "CORRIDOR_LOG_JSON": "1",
               "CORRIDOR_CREDENTIALS": str(creds_path)}
    common = ["--zone", origin, "--dataset", DATASET, "--state-dir", str(tmp / "capture"),
              "--rest-port", str(REST_PORT), "-c", str(path), "-o", "json"]
    try:
        pg.init()
        pg.sql(TABLE)
        pg.sql(rows_sql(1, SNAPSHOT))
        pg.capture_table("customer", CaptureSpec(origin, DATASET, "public.customer",
                                                 "customer_id", None).slot)
        run_env["PGPASSWORD"] = pg.connection().password
        began = time.monotonic()
        started = corridor_cli(["connect", "source", "postgres", "start", "--table", "customer",
                            "--key-column", "customer_id", "--pg-host", "127.0.0.1",
                            "--pg-port", str(PG_PORT), "--pg-database", "corridor",
                            "--pg-user", "corridor_cdc", *common], run_env)
        started["start_s"] = time.monotonic() - began
        yield Capture(env, pg, run_env, common, started)
    finally:
        subprocess.run([sys.executable, "-m", "corridor.cli", "connect", "source", "postgres",
                        "stop", *common], cwd=REPO, env=run_env, capture_output=True, timeout=90)
        pg.stop()
        shutil.rmtree(pg.root, ignore_errors=True)
        drop_principals(env.config, endpoints, creds)
        drop_topics(zones, env)


def parked(capture: Capture, admin) -> int:
    endpoint = zone_endpoint(capture.env.config, capture.env.origin)
    marks = watermarks(endpoint, admin, topics.outbound(capture.env.origin, DATASET))
    return sum(high for _, high in marks.values())


def test_inserts_updates_and_deletes_cross_into_duckdb(zones, capture, tmp_path):
    env, pg, admin = capture.env, capture.pg, zones.credentials.admin
    started = capture.started
    assert started["state"] == "RUNNING" and started["tasks"] == ["RUNNING"], started
    assert "running_as_admin" not in started["_stderr"]  # the park's own principal
    wait_until(lambda: parked(capture, admin) == SNAPSHOT, 120, "the initial snapshot")

    # Streaming: one transaction of LOAD inserts, its rate into the park topic.
    began = time.monotonic()
    pg.sql(rows_sql(SNAPSHOT + 1, SNAPSHOT + LOAD))
    wait_until(lambda: parked(capture, admin) >= SNAPSHOT + LOAD, 180, "the streamed inserts",
               every_s=0.05)
    rate = LOAD / (time.monotonic() - began)
    pg.sql(f"UPDATE customer SET email = 'moved' || customer_id || '@new.example', "
           f"credit_limit = credit_limit + 1, updated_at = now() "
           f"WHERE customer_id <= 'C{UPDATED:06d}'")
    pg.sql(f"DELETE FROM customer WHERE customer_id > 'C{SNAPSHOT + LOAD - DELETED:06d}'")
    total = SNAPSHOT + LOAD + UPDATED + DELETED
    wait_until(lambda: parked(capture, admin) == total, 120, "the updates and deletes")
    status = corridor_cli(["connect", "source", "postgres", "status", *capture.capture_args],
                          capture.run_env)
    assert status["state"] == "RUNNING" and status["records_in_topic"] == total
    print(f"\ndebezium source: {rate:,.0f} rows/s into the park topic ({LOAD} streamed rows), "
          f"worker started in {started['start_s']:.1f} s, worker peak RSS "
          f"{status['worker_peak_rss_mib']} MiB")

    # What the park topic holds: full rows (inserts, then updates) and DELETED tombstones.
    origin = zone_endpoint(env.config, env.origin)
    source: dict[str, dict[str, Any] | None] = {}
    keys: dict[str, bytes | None] = {}
    for r in read_to_end(origin, admin, topics.outbound(env.origin, DATASET)):
        lineage = str(Lineage(r.topic, r.partition, r.offset))
        source[lineage] = json.loads(r.value) if r.value is not None else None
        keys[lineage] = r.key
    tombstones = {lin for lin, v in source.items() if v is None}
    assert len(source) == total and len(tombstones) == DELETED
    versions = Counter(v["customer_id"] for v in source.values() if v is not None)
    assert sum(1 for n in versions.values() if n == 2) == UPDATED  # an update: a new full row
    assert all(keys[lin] == source[lin]["customer_id"].encode() for lin in source
               if lin not in tombstones)

    # Across the corridor, as its own principal.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CORRIDOR_CREDENTIALS", capture.run_env["CORRIDOR_CREDENTIALS"])
        processor = Processor(env, tmp_path, "p", "--until-caught-up", "--idle-ms", "1500")
    try:
        assert processor.wait(300) == 0, processor.log()[-3000:]
        assert "running_as_admin" not in processor.log()
    finally:
        processor.close()
    report = verify(env, admin)
    no_consent = sum(1 for v in source.values() if v is not None and not v["consent"])
    assert report.ok and report.source == total, report
    assert report.quarantined == 0, report.quarantined_by_reason
    # A delete crosses as a tombstone even when the row it deletes was withheld: only its key
    # crosses, pseudonymized like the rows' keys.
    assert report.withheld_by_reason == {"withhold: consent == false": no_consent}
    assert report.delivered == total - no_consent
    dest = zone_endpoint(env.config, env.dest)
    crossed: dict[str, tuple[bytes | None, bytes | None]] = {}  # lineage -> (key, value)
    for r in read_to_end(dest, admin, topics.corridor_topic(env.origin, env.dest, DATASET)):
        crossed[str(r.header("corridor-lineage"))] = (r.key, r.value)
    assert {lin for lin, (_, value) in crossed.items() if value is None} == tombstones
    by_customer = {source[lin]["customer_id"]: key for lin, (key, value) in crossed.items()
                   if value is not None}
    deleted_ids = {keys[lin].decode() for lin in tombstones}
    for lin in tombstones:
        key = crossed[lin][0]
        assert key is not None and key != keys[lin]  # never the customer id as it was
        customer = keys[lin].decode()
        assert customer not in by_customer or by_customer[customer] == key

    # Into DuckDB through the sink, as analytics-<dest>; the ciphertext kept (no --decrypt).
    database = tmp_path / "crm.duckdb"
    landed = corridor_cli(["connect", "sink", "duckdb", "--corridor", env.name, "--database",
                           str(database), "--idle", "3", "-c", str(env.path), "-o", "json"],
                          capture.run_env)
    assert landed["records"] == report.delivered
    con = duckdb.connect(str(database), read_only=True)
    try:
        cursor = con.execute("SELECT * FROM crm_customer")
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
    finally:
        con.close()
    assert "national_id" not in names  # dropped by the corridor
    # Every row of a deleted customer is gone (deleted with the tombstone's offsets).
    expected = {lin for lin, v in source.items() if v is not None and v["consent"]
                and v["customer_id"] not in deleted_ids}
    assert Counter(r["corridor_lineage"] for r in rows) == Counter(expected)
    pseudonyms: dict[str, set[str]] = {}
    for row in rows:
        park = source[row["corridor_lineage"]]
        assert park is not None
        for column in ("customer_id", "country", "segment"):
            assert row[column] == park[column]
        assert row["credit_limit"] == Decimal(park["credit_limit"])
        assert row["full_name"] != park["full_name"]
        pseudonyms.setdefault(park["customer_id"], set()).add(row["full_name"])
        if park["email"] is None:
            assert row["email"] is None
        else:
            assert isinstance(row["email"], bytes) and park["email"].encode() not in row["email"]
        if park["phone"] is not None:
            assert row["phone"] != park["phone"]
    # Pseudonyms are stable: both versions of an updated customer carry the same one.
    assert all(len(tokens) == 1 for tokens in pseudonyms.values())
    assert sum(1 for r in rows if r["email"] is not None) > len(rows) // 2
