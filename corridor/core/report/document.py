"""The report as one JSON document with stable keys: what ``-o json`` prints and what the
markdown and HTML renderers draw, so the three say the same thing.

Owns: :func:`report_document` and the time format. Does not own: building the report
(``model``), drawing it (``render_md``, ``render_html``). Pure.

Keys (every corridor, instrument, chain is a list sorted by name; counts are records
unless named otherwise)::

    kind "transfer-report", window {from_ms, to_ms, from, to}, generated_ms, generated,
    ok (reconciles and verified), reconciles, verified,
    events, replays, conflicts, outside_window, undecodable,
    totals TALLY,
    corridors [{corridor, origin, destination, configured_instrument, reconciles,
                verified, totals TALLY,
                instruments [{instrument, kind, reference, expires, legal_basis [..],
                              events, totals TALLY,
                              protections {dropped|masked|pseudonymized|encrypted:
                                           {field path: delivered records}}}],
                policies [{policy_hash, first_ms, last_ms, first, last, events}],
                keys [{key_id, epoch, first_ms, last_ms, first, last, events}],
                chains [{topic, partition, events, replays, conflicts, first_seq,
                         last_seq, offset_ranges [[first, last]], gaps [[first, last]],
                         offsets, gap_offsets, records, contiguous, reconciles,
                         discontinuities [text], mismatches [{seq, first_offset,
                         last_offset, records}], verification VERIFICATION}]}]

    TALLY: {source, delivered, withheld, quarantined, withheld_by_reason {reason: n},
            quarantined_by_reason {reason: n}}   (source = delivered + withheld +
            quarantined: the terms of `corridor verify -o json`)
    VERIFICATION: {status "ok" | "broken" | "not verified", verified, replays,
                   first_seq, head_seq, break null | {kind, position, seq, detail}}
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from corridor.core.audit import ChainReport
from corridor.core.report.model import (
    ChainSection,
    CorridorSection,
    InstrumentUse,
    Report,
    Span,
    Tally,
    key_epoch,
)


def iso(ms: int) -> str:
    """``2024-05-01T12:00:00.000Z``: epoch milliseconds as UTC ISO-8601."""
    moment = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def report_document(report: Report) -> dict[str, Any]:
    """*report* as the document described in the module docstring."""
    w = report.window
    return {
        "kind": "transfer-report",
        "window": {"from_ms": w.from_ms, "to_ms": w.to_ms, "from": iso(w.from_ms),
                   "to": iso(w.to_ms)},
        "generated_ms": report.generated_ms, "generated": iso(report.generated_ms),
        "ok": report.reconciles and report.verified,
        "reconciles": report.reconciles, "verified": report.verified,
        "events": report.events, "replays": report.replays, "conflicts": report.conflicts,
        "outside_window": report.outside, "undecodable": report.undecodable,
        "totals": tally_doc(report.totals),
        "corridors": [_corridor_doc(report, c) for _, c in sorted(report.corridors.items())],
    }


def tally_doc(t: Tally) -> dict[str, Any]:
    return {
        "source": t.records, "delivered": t.delivered, "withheld": t.withheld,
        "quarantined": t.quarantined,
        "withheld_by_reason": dict(sorted(t.withheld_by_reason.items())),
        "quarantined_by_reason": dict(sorted(t.quarantined_by_reason.items())),
    }


def _span_doc(span: Span) -> dict[str, Any]:
    return {"first_ms": span.first_ms, "last_ms": span.last_ms, "first": iso(span.first_ms),
            "last": iso(span.last_ms), "events": span.events}


def _corridor_doc(report: Report, c: CorridorSection) -> dict[str, Any]:
    uses = sorted(c.instruments.values(), key=lambda u: u.instrument or "")
    return {
        "corridor": c.name, "origin": c.origin, "destination": c.destination,
        "configured_instrument": c.configured_instrument,
        "reconciles": c.reconciles, "verified": c.verified,
        "totals": tally_doc(c.totals),
        "instruments": [_instrument_doc(report, u) for u in uses],
        "policies": [{"policy_hash": h, **_span_doc(s)}
                     for h, s in sorted(c.policies.items(), key=lambda i: i[1].first_ms)],
        "keys": [{"key_id": k, "epoch": key_epoch(k), **_span_doc(s)}
                 for k, s in sorted(c.keys.items())],
        "chains": [_chain_doc(s) for _, s in sorted(c.chains.items())],
    }


def _instrument_doc(report: Report, use: InstrumentUse) -> dict[str, Any]:
    found = report.instruments.get(use.instrument) if use.instrument else None
    return {
        "instrument": use.instrument,
        "kind": found.kind if found else None,
        "reference": found.reference if found else None,
        "expires": found.expires.isoformat() if found else None,
        "legal_basis": sorted(use.legal_basis), "events": use.events,
        "totals": tally_doc(use.tally),
        "protections": {p: dict(sorted(paths.items()))
                        for p, paths in use.protections.items()},
    }


def _chain_doc(s: ChainSection) -> dict[str, Any]:
    return {
        "topic": s.chain.topic, "partition": s.chain.partition, "events": s.events,
        "replays": s.replays, "conflicts": s.conflicts, "first_seq": s.first_seq,
        "last_seq": s.last_seq, "offset_ranges": [list(r) for r in s.ranges],
        "gaps": [list(g) for g in s.gaps], "offsets": s.offsets,
        "gap_offsets": s.gap_offsets, "records": s.records, "contiguous": s.contiguous,
        "reconciles": s.reconciles, "discontinuities": list(s.discontinuities),
        "mismatches": [{"seq": m.seq, "first_offset": m.first_offset,
                        "last_offset": m.last_offset, "records": m.records}
                       for m in s.mismatches],
        "verification": verification_doc(s.status),
    }


def verification_doc(status: ChainReport | None) -> dict[str, Any]:
    if status is None:
        return {"status": "not verified", "verified": 0, "replays": 0, "first_seq": None,
                "head_seq": None, "break": None}
    b = status.broken
    return {
        "status": "ok" if status.ok else "broken", "verified": status.verified,
        "replays": len(status.replays), "first_seq": status.first_seq,
        "head_seq": status.head_seq,
        "break": None if b is None else {"kind": b.kind, "position": b.position,
                                         "seq": b.seq, "detail": b.detail},
    }
