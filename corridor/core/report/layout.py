"""What the report and the register say, as headings, lines and tables: one layout that
``render_md`` and ``render_html`` each draw, so markdown and HTML cannot drift apart.

Owns: :func:`report_layout` (a transfer report document -> :class:`Layout`) and
:func:`register_layout` (a records-of-processing document -> :class:`Layout`). Does not
own the documents (``document``, ``register``) or any markup. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

SHOWN = 10  # discontinuities and mismatching events listed per chain


@dataclass(frozen=True)
class Heading:
    text: str


@dataclass(frozen=True)
class Line:
    """A paragraph; ``ok`` marks a verdict line (True good, False bad, None neutral)."""

    text: str
    ok: bool | None = None


@dataclass(frozen=True)
class Table:
    """``numeric[i]``: column i holds numbers (right-aligned)."""

    headers: tuple[str, ...]
    rows: list[tuple[str, ...]]
    numeric: tuple[bool, ...] = ()


Block = Heading | Line | Table


@dataclass(frozen=True)
class Part:
    """One corridor (``corridor`` set: its name) or a general section (None)."""

    title: str
    blocks: list[Block]
    corridor: str | None = None


@dataclass(frozen=True)
class Layout:
    title: str
    intro: list[Block]
    parts: list[Part] = field(default_factory=list)


def _yes(value: bool) -> str:
    return "yes" if value else "NO"


def _n(value: Any) -> str:
    return "-" if value is None else str(value)


def _num(n: int, *rest: bool) -> tuple[bool, ...]:
    return (False,) * n + tuple(rest)


def report_layout(doc: dict[str, Any]) -> Layout:
    """The transfer report (``document.report_document``) laid out."""
    w = doc["window"]
    intro: list[Block] = [
        Line(f"Window: {w['from']} (inclusive) to {w['to']} (exclusive), on the audit "
             f"events' times. Generated {doc['generated']}."),
        Line(f"Events counted: {doc['events']} (batch replays counted once: "
             f"{doc['replays']}; conflicting events: {doc['conflicts']}; outside the window: "
             f"{doc['outside_window']}; undecodable audit records: {doc['undecodable']})."),
        Line("Totals reconcile: " + ("yes" if doc["reconciles"] else "NO")
             + "; audit chains verified: " + ("yes" if doc["verified"] else "NO") + ".",
             ok=doc["ok"]),
    ]
    totals = Table(("corridor", "from", "to", "source", "delivered", "withheld", "quarantined",
                    "reconciles", "chains verified"), [], _num(3, True, True, True, True))
    for c in doc["corridors"]:
        t = c["totals"]
        seen = bool(c["chains"])  # no event in the window: nothing to reconcile or verify
        totals.rows.append((c["corridor"], _n(c["origin"]), _n(c["destination"]),
                            str(t["source"]), str(t["delivered"]), str(t["withheld"]),
                            str(t["quarantined"]), _yes(c["reconciles"]) if seen else "-",
                            _yes(c["verified"]) if seen else "-"))
    t = doc["totals"]
    totals.rows.append(("all", "", "", str(t["source"]), str(t["delivered"]), str(t["withheld"]),
                        str(t["quarantined"]), _yes(doc["reconciles"]), _yes(doc["verified"])))
    parts = [Part("Totals", [totals, Line("The totals are in the terms of corridor verify "
                                           "(source = delivered + withheld + quarantined).")])]
    parts += [Part(f"Corridor {c['corridor']}", _corridor_blocks(c), c["corridor"])
              for c in doc["corridors"]]
    return Layout("Transfer report", intro, parts)


def _outcome_table(t: dict[str, Any]) -> Table:
    table = Table(("outcome", "reason", "records"), [], _num(2, True))
    table.rows.append(("delivered", "", str(t["delivered"])))
    for outcome in ("withheld", "quarantined"):
        table.rows.append((outcome, "", str(t[outcome])))
        table.rows.extend(("", reason, str(n))
                          for reason, n in t[f"{outcome}_by_reason"].items())
    return table


def _corridor_blocks(c: dict[str, Any]) -> list[Block]:
    route = f"{_n(c['origin'])} to {_n(c['destination'])}" if c["origin"] else \
        "not in the corridor file"
    blocks: list[Block] = [
        Line(f"Route: {route}. Configured instrument: {_n(c['configured_instrument'])}.")]
    if not c["chains"]:
        return [*blocks, Line("No audit events in the window.")]
    blocks.append(Line(f"Totals reconcile: {_yes(c['reconciles'])}; chains verified: "
                       f"{_yes(c['verified'])}.", ok=c["reconciles"] and c["verified"]))
    for use in c["instruments"]:
        blocks += _instrument_blocks(use)
    if c["policies"]:
        blocks += [Heading("Policy versions in force"),
                   Table(("policy hash", "first", "last", "events"),
                         [(p["policy_hash"], p["first"], p["last"], str(p["events"]))
                          for p in c["policies"]], _num(3, True))]
    if c["keys"]:
        blocks += [Heading("Data keys used"),
                   Table(("key id", "epoch", "first", "last", "events"),
                         [(k["key_id"], _n(k["epoch"]), k["first"], k["last"], str(k["events"]))
                          for k in c["keys"]], _num(4, True))]
    return blocks + _chain_blocks(c["chains"])


def _instrument_blocks(use: dict[str, Any]) -> list[Block]:
    name = use["instrument"]
    title = f"Under instrument {name}" if name else "Under no instrument"
    if use["kind"]:
        title += f" ({use['kind']}, {use['reference']}, expires {use['expires']})"
    elif name:
        title += " (not declared in the corridor file)"
    blocks: list[Block] = [
        Heading(title),
        Line(f"Legal basis: {', '.join(use['legal_basis'])}. Audit events: {use['events']}."),
        _outcome_table(use["totals"]),
    ]
    rows: list[tuple[str, ...]] = [(p, path, str(n)) for p, paths in use["protections"].items()
                                   for path, n in paths.items()]
    if rows:
        blocks.append(Table(("protection", "field", "delivered records"), rows, _num(2, True)))
    return blocks


def _ranges(ranges: Sequence[Sequence[int]]) -> str:
    return ", ".join(f"{a}-{b}" for a, b in ranges) or "-"


def _chain_blocks(chains: list[dict[str, Any]]) -> list[Block]:
    table = Table(("source partition", "seq", "events", "replays", "offsets covered", "gaps",
                   "records", "offsets", "reconciles", "chain"), [],
                  _num(2, True, True, False, False, True, True))
    problems: list[Block] = []
    for ch in chains:
        where = f"{ch['topic']}/{ch['partition']}"
        v = ch["verification"]
        status = v["status"] if v["break"] is None else \
            f"broken at seq {_n(v['break']['seq'])}: {v['break']['kind']}"
        if v["status"] == "ok" and v["first_seq"]:
            status += f" (from seq {v['first_seq']})"
        table.rows.append((where, f"{_n(ch['first_seq'])}-{_n(ch['last_seq'])}",
                           str(ch["events"]), str(ch["replays"]), _ranges(ch["offset_ranges"]),
                           _ranges(ch["gaps"]), str(ch["records"]),
                           str(ch["offsets"]), _yes(ch["reconciles"]), status))
        notes = list(ch["discontinuities"][:SHOWN])
        notes += [f"seq {m['seq']} counts {m['records']} records for offsets "
                  f"{m['first_offset']}-{m['last_offset']}" for m in ch["mismatches"][:SHOWN]]
        if ch["conflicts"]:
            notes.append(f"{ch['conflicts']} conflicting events (another event at a seq seen)")
        if v["break"] is not None:
            notes.append(f"chain: {v['break']['detail']}")
        problems += [Line(f"{where}: {note}", ok=False) for note in notes]
    return [Heading("Audit chains and reconciliation"), table, *problems]


def register_layout(doc: dict[str, Any]) -> Layout:
    """The records of processing (``register.register_document``) laid out."""
    intro: list[Block] = [Line(f"Configured transfers of {doc['config']}, as of {doc['date']} "
                               "(from the corridor file alone).")]
    return Layout("Records of processing: cross-border transfers", intro,
                  [Part(f"Transfer {e['corridor']}", _entry_blocks(e), e["corridor"])
                   for e in doc["corridors"]])


def _entry_blocks(e: dict[str, Any]) -> list[Block]:
    i = e["instrument"]
    rows: list[tuple[str, ...]] = [
        ("exporter (controller's zone)", f"{e['exporter']['zone']} ({e['exporter']['jurisdiction']})"),
        ("recipient", f"{e['recipient']['zone']} ({e['recipient']['jurisdiction']}), read by "
                      + ", ".join(e["recipient"]["principals"])),
        ("purpose", _n(e["purpose"])),
        ("legal basis", e["legal_basis"]),
        ("retention", "-" if e["retention_days"] is None else f"{e['retention_days']} days"),
        ("consent required", "-" if e["consent"] is None else
         f"{', '.join(e['consent']['purposes'])} (the processor's view of it at most "
         f"{e['consent']['staleness_seconds']} s old)"),
    ]
    if i is None:
        rows.append(("instrument", "none"))
    else:
        rows += [("instrument", f"{i['id']}: {i['kind']}, {i['reference']}"),
                 ("parties", "; ".join(i["parties"])),
                 ("signed / expires", f"{i['signed']} / {i['expires']} ({i['state']})")]
    blocks: list[Block] = [Table(("entry", "value"), rows)]
    for d in e["datasets"]:
        blocks.append(Heading(f"Dataset {d['dataset']}"))
        blocks.append(Table(("field class", "fields"),
                            [(k, ", ".join(v) or "-") for k, v in d["categories"].items()]))
        safeguards: list[tuple[str, ...]] = [("record key", f"class {d['key']['class']}, {d['key']['treatment']}")]
        if d["subject"]:
            safeguards.append(("data subject", f"named by {d['subject']} (keyed HMAC, never "
                                               "leaves the exporter)"))
        safeguards += sorted((p, f"{t}, erasable per subject" if p in d["erasable"] else t)
                             for p, t in d["safeguards"].items())
        safeguards += [(p, "none: crosses as it is") for p in d["unprotected"]]
        blocks.append(Table(("field", "safeguard"), safeguards))
    return blocks
