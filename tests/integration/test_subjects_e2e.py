"""Data subjects on real brokers: the volume ledger's ceiling across a processor SIGKILL, and a
consent withdrawal across a rebalance and a restart; ``corridor verify`` after each.

What is checked is what the operator would look at: which people's records reached the
destination (by each delivered record's lineage, mapped back to the source record's
subject), the reasons the others stay home with, and `corridor subjects count -o json`.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections import Counter
from pathlib import Path

import fastavro
import pytest
from click.testing import CliRunner

from corridor.cli import cli
from corridor.core import acl, topics
from corridor.core.consent import Consent, PurposeConsent
from corridor.core.errors import KafkaUnavailable
from corridor.core.schema import unframe
from corridor.dev.sample import encode, generate_rows
from corridor.kafka.acl_sync import drop_principals, sync_acls
from corridor.kafka.io import PlainProducer, read_to_end
from corridor.processor.resolve import zone_endpoint

from .chaos_env import assert_exactly_once, corridor
from .processor_env import DATASET, Processor, committed, verify, wait_until
from .test_acl import _private_credentials

pytestmark = pytest.mark.integration

CEILING, PEOPLE, EACH = 100, 150, 4
PURPOSE = "order-fulfilment"


def email(person: int) -> str:
    return f"person{person:03d}@example.org"


def subjects_edit(purposes: bool, thresholds: bool):
    def edit(text: str) -> str:
        if thresholds:
            text = text.replace("jurisdiction: HK,", "jurisdiction: HK, thresholds: {personal: "
                                f"{CEILING}, on_reach: withhold-new-subjects}},")
        text = text.replace('    validate: ["declared_value >= 0"]\n',
                            '    validate: ["declared_value >= 0"]\n    subject: contact_email\n')
        extra = "    batch: {max_records: 10, max_wait_ms: 50}\n"
        if purposes:
            extra += f"    purposes: [{PURPOSE}]\n"
        return text.replace("    legal_basis: TEST-BASIS\n", "    legal_basis: TEST-BASIS\n" + extra)
    return edit


def produce_people(env, writer, people: list[int], seed: int) -> None:
    """One shipment per entry of *people*, by that person, that the corridor's rule lets
    cross (consent true), keyed by the person."""
    schema = env.config.datasets[DATASET].schema
    rows = generate_rows(DATASET, len(people), seed=seed, withheld_share=0.0)
    producer = PlainProducer(zone_endpoint(env.config, env.origin), writer)
    for row, person in zip(rows, people, strict=True):
        row["contact_email"] = email(person)
        producer.produce(topics.outbound(env.origin, DATASET), encode(row, schema),
                         email(person).encode())
    producer.flush(60)


def write_consent(env, writer, people: list[int], withdrawn_at: int | None = None) -> None:
    producer = PlainProducer(zone_endpoint(env.config, env.origin), writer)
    for person in people:
        value = Consent({PURPOSE: PurposeConsent(1_700_000_000_000, withdrawn_at)}).to_json()
        producer.produce(topics.consent(env.origin), value, email(person).encode())
    producer.flush(60)


def outcomes(env, admin) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Per person (email): the lineages delivered, and the reasons of the records withheld."""
    schema = env.config.datasets[DATASET].schema
    origin, dest = (zone_endpoint(env.config, z) for z in (env.origin, env.dest))
    who = {}
    for r in read_to_end(origin, admin, topics.outbound(env.origin, DATASET)):
        body = unframe(r.value)[1]
        record = fastavro.schemaless_reader(io.BytesIO(body), schema.parsed, schema.parsed)
        who[f"{r.topic}/{r.partition}/{r.offset}"] = record["contact_email"]
    delivered: dict[str, list[str]] = {}
    corridor_topic = topics.corridor_topic(env.origin, env.dest, DATASET)
    for r in read_to_end(dest, admin, corridor_topic):
        lineage = r.header("corridor-lineage")
        delivered.setdefault(who[lineage], []).append(lineage)
    withheld: dict[str, list[str]] = {}
    for r in read_to_end(origin, admin, topics.withheld(env.corridor)):
        withheld.setdefault(who[r.key.decode()], []).append(r.header("corridor-reason"))
    return delivered, withheld


def subjects_count(env) -> dict:
    shown = CliRunner().invoke(cli, ["subjects", "count", "-c", str(env.path), "--zone",
                                     env.origin, "-o", "json"])
    assert shown.exit_code == 0, shown.output
    return json.loads(shown.output)


def run_to_end(env, tmp_path: Path, name: str) -> Processor:
    final = Processor(env, tmp_path, name, "--until-caught-up", "--idle-ms", "3000")
    try:
        assert final.wait(300) == 0, final.log()[-3000:]
    finally:
        final.close()
    return final


def test_the_ceiling_admits_exactly_its_subjects_across_a_sigkill(zones, tmp_path):
    admin = zones.credentials.admin
    people = [i % PEOPLE for i in range(PEOPLE * EACH)]  # each person EACH times, interleaved
    half = len(people) // 2
    with corridor(zones, tmp_path, edit=subjects_edit(purposes=False, thresholds=True)) as env:
        produce_people(env, admin, people[:half], seed=41)
        proc = Processor(env, tmp_path, "killed")
        try:
            wait_until(lambda: committed(env, admin) > 0 or proc.proc.poll() is not None, 120,
                       "first commits")
            assert proc.proc.poll() is None, proc.log()[-3000:]
            proc.kill()
        finally:
            proc.close()
        produce_people(env, admin, people[half:], seed=42)
        final = run_to_end(env, tmp_path, "final")
        assert committed(env, admin) == len(people)

        delivered, withheld = outcomes(env, admin)
        assert len(delivered) == CEILING
        assert all(len(lineages) == EACH for lineages in delivered.values())
        assert not set(delivered) & set(withheld)
        assert len(withheld) == PEOPLE - CEILING
        year = dt.datetime.now(dt.UTC).year
        reasons = Counter(r for rs in withheld.values() for r in rs)
        assert reasons == {f"volume_threshold: personal subjects of zone {env.origin} in "
                           f"{year} reached the ceiling {CEILING}": (PEOPLE - CEILING) * EACH}
        (row,) = subjects_count(env)["ledger"]
        assert (row["year"], row["class"], row["subjects"], row["level"]) == (
            year, "personal", CEILING, "reached")
        assert row["destinations"] == {env.dest: CEILING}
        assert_exactly_once(verify(env, admin), len(people))
        assert "subjects_ceiling_reached" in proc.log() + final.log()


def test_a_withdrawal_holds_back_every_later_record_across_a_rebalance_and_a_restart(
        zones, tmp_path):
    admin = zones.credentials.admin
    people, quitter = list(range(10)), 0
    batch = [p for _ in range(5) for p in people]  # 50 records, 5 per person
    with corridor(zones, tmp_path, edit=subjects_edit(purposes=True, thresholds=False)) as env:
        write_consent(env, admin, people)
        produce_people(env, admin, batch, seed=51)
        a, b = Processor(env, tmp_path, "a"), Processor(env, tmp_path, "b")
        try:
            wait_until(lambda: committed(env, admin) == len(batch), 120, "the first batch")
            write_consent(env, admin, [quitter], withdrawn_at=1_800_000_000_000)
            wait_until(lambda: all("consent_withdrawn" in p.log() for p in (a, b)), 60,
                       "both instances' consent views to reach the withdrawal")
            produce_people(env, admin, batch, seed=52)
            wait_until(lambda: committed(env, admin) == 2 * len(batch), 120, "the second batch")
            assert a.stop() == 0  # b takes a's partitions over (rebalance)
            produce_people(env, admin, batch, seed=53)
            wait_until(lambda: committed(env, admin) == 3 * len(batch), 120, "the third batch")
            b.kill()
        finally:
            a.close()
            b.close()
        produce_people(env, admin, batch, seed=54)
        restarted = run_to_end(env, tmp_path, "restarted")  # the view rebuilt from the topic
        assert "consent_view_fresh" in restarted.log()

        delivered, withheld = outcomes(env, admin)
        quitting = email(quitter)
        assert len(delivered[quitting]) == 5  # the first batch, before the withdrawal
        assert withheld == {quitting: [f"consent_withdrawn: {PURPOSE}"] * 15}
        assert all(len(delivered[email(p)]) == 20 for p in people if p != quitter)
        assert_exactly_once(verify(env, admin), 4 * len(batch))


def test_on_least_rights_the_consent_service_writes_consent_and_the_processor_counts(
        zones, tmp_path):
    """`provision --acls` rights only: the zone's consent service writes consent (a park may
    not), the processor as corridor-<name> reads it and writes the ledger; no admin."""
    admin = zones.credentials.admin
    people = list(range(5))
    with corridor(zones, tmp_path, edit=subjects_edit(purposes=True, thresholds=True)) as env:
        creds = _private_credentials(tmp_path / "credentials.json", admin)
        endpoints = {z: zone_endpoint(env.config, z) for z in env.config.zones}
        sync_acls(env.config, endpoints, creds)
        try:
            park = creds.get(acl.park_principal(env.origin, DATASET))
            with pytest.raises(KafkaUnavailable, match="(?i)authorization"):
                write_consent(env, park, people)
            write_consent(env, creds.get(acl.consent_principal(env.origin)), people[:4])
            produce_people(env, park, people * 2, seed=61)
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("CORRIDOR_CREDENTIALS", str(creds.path))
                proc = run_to_end(env, tmp_path, "least-rights")
            assert "running_as_admin" not in proc.log()
        finally:
            drop_principals(env.config, endpoints, creds)
        delivered, withheld = outcomes(env, admin)
        assert sorted(delivered) == [email(p) for p in people[:4]]
        assert withheld == {email(4): ["consent_missing"] * 2}
        (row,) = subjects_count(env)["ledger"]
        assert row["subjects"] == 4
