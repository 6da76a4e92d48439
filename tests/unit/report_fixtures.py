"""Real chained audit events for the report tests (built with ``core.audit.next_event``),
and the sample corridor file with absolute schema paths."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from corridor.core.audit import AuditEvent, BatchSummary, ChainState, encode_event, next_event
from corridor.core.config import Config, load_config

REPO = Path(__file__).resolve().parents[2]
T0 = 1_714_521_600_000  # 2024-05-01T00:00:00Z
HOUR = 3_600_000
SHIPMENT = "hk.outbound.trade.shipment"
ORDER = "hk.outbound.ecommerce.order"
PLAYBACK = "asean.outbound.media.playback"
CONSENT = "withhold: consent == false or category == 'strategic'"
STRATEGIC = "class important not admitted by corridor hk-asean"
INVALID = "validate: declared_value >= 0"
TRUNCATED = "decode: truncated record"
SHIPMENT_PROTECTIONS = {"encrypted": ("contact_email",), "pseudonymized": ("contact_name",),
                        "dropped": ("national_id",)}


def sample_config(tmp_path: Path) -> Config:
    path = tmp_path / "corridors.yaml"
    path.write_text((REPO / "corridors.yaml").read_text().replace("schemas/", f"{REPO}/schemas/"))
    return load_config(path)


@dataclass
class Chain:
    """One (corridor, topic, partition) chain being written, one batch at a time."""

    corridor: str
    topic: str
    partition: int = 0
    instrument: str | None = "hk-eu-rmc"
    legal_basis: str = "PDPO-RMCC"
    policy: str = "policy-v1"
    keys: tuple[str, ...] = ("hk-eu-dek-e1-0a1b2c3d",)
    protections: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(SHIPMENT_PROTECTIONS))
    next_offset: int = 0
    events: list[AuditEvent] = field(default_factory=list)
    state: ChainState | None = None

    def batch(self, ts_ms: int, delivered: int, withheld: Mapping[str, int] | None = None,
              quarantined: Mapping[str, int] | None = None, *, skip: int = 0,
              extra_offsets: int = 0) -> AuditEvent:
        """A batch event covering the next offsets (after *skip* unreported ones), whose
        counts are the given outcomes; *extra_offsets* widens it without counts."""
        withheld, quarantined = dict(withheld or {}), dict(quarantined or {})
        n = delivered + sum(withheld.values()) + sum(quarantined.values())
        first = self.next_offset + skip
        summary = BatchSummary(
            self.instrument, self.legal_basis, self.policy, first, first + n + extra_offsets - 1,
            outcomes={"delivered": delivered, "withheld": sum(withheld.values()),
                      "quarantined": sum(quarantined.values())},
            reasons=withheld, quarantine_reasons=quarantined, protections=self.protections,
            key_ids=self.keys if delivered else ())
        return self._append(summary, ts_ms)

    def gap(self, ts_ms: int, size: int) -> AuditEvent:
        first = self.next_offset
        summary = BatchSummary(self.instrument, self.legal_basis, self.policy, first,
                               first + size - 1, kind="gap")
        return self._append(summary, ts_ms)

    def _append(self, summary: BatchSummary, ts_ms: int) -> AuditEvent:
        state = self.state or ChainState.start(self.corridor, self.topic, self.partition)
        event, self.state = next_event(state, summary, ts_ms)
        self.events.append(event)
        self.next_offset = summary.last_offset + 1
        return event


def realistic_log() -> list[bytes]:
    """A day of three corridors, as the audit topics hold it: hk-eu on two partitions
    with a policy change to a second instrument and a key rotation, replays, a gap;
    hk-asean with withheld important records; asean-eu on the Arrow path."""
    p0 = Chain("hk-eu", SHIPMENT, 0)
    p1 = Chain("hk-eu", ORDER, 1, protections={"pseudonymized": ("buyer_name",),
                                               "encrypted": ("buyer_email", "shipping_address"),
                                               "masked": ("buyer_phone",),
                                               "dropped": ("id_number",)})
    asean = Chain("hk-asean", SHIPMENT, 0, instrument="hk-asean-rmc", legal_basis="DEPA",
                  keys=("hk-asean-dek-e4-99aa00bb",))
    arrow = Chain("asean-eu", PLAYBACK, 2, instrument="asean-eu-mcc", legal_basis="ASEAN-MCC",
                  keys=("asean-eu-dek-e2-5e5e5e5e",),
                  protections={"pseudonymized": ("user_id",), "encrypted": ("device_id",),
                               "dropped": ("ip_address",)})
    log: list[AuditEvent] = []
    for hour in range(6):
        ts = T0 + hour * HOUR
        log.append(p0.batch(ts, 480, {CONSENT: 15}, {INVALID: 5}))
        log.append(p1.batch(ts + 1000, 300, {"withhold: consent == false": 20}))
        log.append(asean.batch(ts + 2000, 200, {STRATEGIC: 40}, {TRUNCATED: 2}))
        log.append(arrow.batch(ts + 3000, 4800, {"withhold: consent == false or "
                                                 "is_minor == true": 200}))
        if hour == 2:
            log.append(log[-4])  # the hk-eu batch replayed after an aborted transaction
            log.append(p0.gap(ts + 5000, 25))
        if hour == 3:
            p0.instrument, p0.policy = "hk-eu-rmc-2026", "policy-v2"
            p0.keys = ("hk-eu-dek-e2-4d5e6f70",)
    return [encode_event(e) for e in log]
