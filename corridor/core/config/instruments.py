"""The ``instruments:`` section (transfer instruments) and a corridor's ``instrument:``.

An instrument is the legal document a transfer runs under (a standard contract, a
security assessment, a certification, ...)::

    instruments:
      hk-eu-rmc:
        kind: HK-RMC
        reference: PCPD-RMC-2024-017
        parties: [Acme Trading (HK) Ltd, Acme Europe GmbH]
        signed: 2024-03-01
        expires: 2034-02-28
        purpose: order fulfilment and customs clearance
        retention: 3y            # days (an integer) or N d | w | m | y

Checks (each refusal names file, line and field): unknown keys; a missing or empty
``kind``, ``reference``, ``parties``, ``signed``, ``expires``, ``purpose``,
``retention``; an unknown kind (with "did you mean"); a date that is not YYYY-MM-DD;
``expires`` before ``signed``. On a corridor: an unknown instrument id; a corridor
that carries personal or sensitive data without one (see :func:`carries_personal_data`;
enforced when the file has an ``instruments:`` section, so files written before
instruments existed still load; the sample declares one); a kind that does not fit the
corridor's zones, under these rules only (jurisdictions as in the zones' ``jurisdiction``):

- ``GBA-SC`` (Greater Bay Area standard contract): one end's jurisdiction starts with
  ``CN`` and the other is ``HK`` or ``MO``, in either direction.
- ``CN-SC``, ``CN-SA``, ``CN-CERT`` (PIPL standard contract, security assessment,
  certification: export from the mainland): the origin starts with ``CN``, the
  destination does not.
- ``EU-SCC``, ``EU-BCR``: the origin is ``EU`` or an EEA member state, the destination
  is neither.
- ``HK-RMC`` (PCPD recommended model contractual clauses): the origin is ``HK``.
- ``ASEAN-MCC`` (ASEAN model contractual clauses): the origin is an ASEAN member state.
- ``CBPR``, ``PRP``: no zone rule (participation changes over time; not checked here).

Retention units: ``d`` 1 day, ``w`` 7, ``m`` 30, ``y`` 365.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Literal

from ruamel.yaml.comments import CommentedSeq

from corridor.core.config.document import (
    MapView,
    Problems,
    as_map,
    describe,
    did_you_mean,
    item_line,
    text_value,
)
from corridor.core.config.model import (
    Dataset,
    FieldClass,
    Instrument,
    KeyTreatment,
    Transform,
    Zone,
)

INSTRUMENT_KEYS = ("kind", "reference", "parties", "signed", "expires", "purpose",
                   "retention", "description")
KINDS = ("CN-SC", "CN-SA", "CN-CERT", "GBA-SC", "EU-SCC", "EU-BCR", "ASEAN-MCC", "HK-RMC",
         "CBPR", "PRP")
INSTRUMENT_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
RETENTION = re.compile(r"^([1-9][0-9]*)\s*([dwmy])$")
UNIT_DAYS = {"d": 1, "w": 7, "m": 30, "y": 365}
EXPIRING_DAYS = 30
EEA = frozenset([
    "EU", "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE",
    "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO",
])
ASEAN = frozenset(["BN", "KH", "ID", "LA", "MY", "MM", "PH", "SG", "TH", "VN"])
PERSONAL = (FieldClass.PERSONAL, FieldClass.SENSITIVE)
InstrumentState = Literal["valid", "expiring", "expired"]


def instrument_state(instrument: Instrument, now: dt.date) -> InstrumentState:
    """``expired`` after ``expires`` (the expiry day itself is still valid), ``expiring``
    within :data:`EXPIRING_DAYS` days of it, else ``valid``. *now* is a date (UTC);
    a datetime is reduced to its date."""
    today = now.date() if isinstance(now, dt.datetime) else now
    if today > instrument.expires:
        return "expired"
    if (instrument.expires - today).days <= EXPIRING_DAYS:
        return "expiring"
    return "valid"


def build_instruments(section: MapView | None, problems: Problems) -> dict[str, Instrument]:
    """Valid instruments by id; invalid ones are reported and left out."""
    out: dict[str, Instrument] = {}
    if section is None:
        return out
    for name in section.data:
        key = str(name)
        if not INSTRUMENT_ID.match(key):
            problems.add(section.key_line(name), section.child(key),
                         f"bad instrument id '{key}' (expected lowercase letters, digits, "
                         "'-', '_', '.')")
            continue
        view = as_map(section.data[name], section.child(key), section.key_line(name),
                      "instrument settings {kind, reference, parties, signed, expires, "
                      "purpose, retention}", problems)
        instrument = _build_instrument(key, view, problems) if view is not None else None
        if instrument is not None:
            out[key] = instrument
    return out


def _build_instrument(name: str, view: MapView, problems: Problems) -> Instrument | None:
    before = len(problems.errors)
    view.check_keys(INSTRUMENT_KEYS, problems)
    kind = text_value(view, "kind", problems, f"an instrument kind ({', '.join(KINDS)})")
    if kind is not None and kind not in KINDS:
        problems.add(view.value_line("kind"), view.child("kind"),
                     f"unknown instrument kind '{kind}'{did_you_mean(kind, KINDS)} "
                     f"(expected one of: {', '.join(KINDS)})")
    reference = text_value(view, "reference", problems, "the instrument's reference")
    purpose = text_value(view, "purpose", problems, "the purpose of the transfer")
    parties = _parties(view, problems)
    signed = _date(view, "signed", problems)
    expires = _date(view, "expires", problems)
    if signed is not None and expires is not None and expires < signed:
        problems.add(view.value_line("expires"), view.child("expires"),
                     f"expires {expires.isoformat()} is before signed {signed.isoformat()}")
    retention = retention_days(view, problems)
    if len(problems.errors) > before:
        return None
    assert kind and reference and purpose and parties and signed and expires and retention
    return Instrument(name, kind, reference, parties, signed, expires, purpose, retention)


def _parties(view: MapView, problems: Problems) -> tuple[str, ...] | None:
    if "parties" not in view.data:
        problems.add(view.line, view.child("parties"), "missing key 'parties' (who signed it)")
        return None
    value, line, where = view.data["parties"], view.value_line("parties"), view.child("parties")
    if not isinstance(value, list) or not value:
        problems.add(line, where, f"expected a list of parties, got {describe(value)}")
        return None
    names: list[str] = []
    for i, item in enumerate(value):
        if isinstance(item, str) and item.strip():
            names.append(item.strip())
        else:
            at = item_line(value, i, line) if isinstance(value, CommentedSeq) else line
            problems.add(at, where, f"expected a party's name, got {describe(item)}")
    return tuple(names) if len(names) == len(value) else None


def _date(view: MapView, key: str, problems: Problems) -> dt.date | None:
    """YAML reads an unquoted YYYY-MM-DD as a date; a quoted one is parsed here."""
    if key not in view.data:
        problems.add(view.line, view.child(key), f"missing key '{key}' (a date, YYYY-MM-DD)")
        return None
    value = view.data[key]
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    problems.add(view.value_line(key), view.child(key),
                 f"expected a date YYYY-MM-DD, got {describe(value)}")
    return None


def retention_days(view: MapView, problems: Problems) -> int | None:
    """Days: an integer > 0, or N followed by d, w, m (30 days) or y (365 days)."""
    if "retention" not in view.data:
        problems.add(view.line, view.child("retention"),
                     "missing key 'retention' (days, or e.g. 90d, 18m, 3y)")
        return None
    value = view.data["retention"]
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return int(value)
    match = RETENTION.match(value.strip()) if isinstance(value, str) else None
    if match:
        return int(match.group(1)) * UNIT_DAYS[match.group(2)]
    problems.add(view.value_line("retention"), view.child("retention"),
                 f"expected days (an integer > 0) or N d|w|m|y such as 3y, got {describe(value)}")
    return None


def corridor_instrument(
    view: MapView,
    instruments: Mapping[str, Instrument],
    declared: set[str] | None,
    problems: Problems,
) -> str | None:
    """The corridor's ``instrument:`` id if declared and valid, else None (a bad one is
    reported; a declared-but-invalid instrument is not reported twice). *declared* is
    None when the file has no ``instruments:`` section."""
    if "instrument" not in view.data:
        return None
    name = text_value(view, "instrument", problems, "the id of a declared instrument")
    if name is None:
        return None
    known = declared or set()
    if name not in known:
        listed = ", ".join(sorted(known)) or "none (add an instruments: section)"
        problems.add(view.value_line("instrument"), view.child("instrument"),
                     f"unknown instrument '{name}'{did_you_mean(name, known)} "
                     f"(declared instruments: {listed})")
        return None
    return name if name in instruments else None


def check_instrument(
    view: MapView,
    instrument: Instrument | None,
    required: bool,
    origin: Zone,
    destination: Zone,
    carries_personal: bool,
    problems: Problems,
) -> None:
    """Refuse a corridor with personal data but no instrument (when *required*), and an
    instrument whose kind does not fit the corridor's zones."""
    if instrument is None:
        if required and carries_personal and "instrument" not in view.data:
            problems.add(view.line, view.child("instrument"),
                         "this corridor carries personal or sensitive data and names no "
                         "transfer instrument (add instrument: <id> from instruments:)")
        return
    problem = zone_misfit(instrument.kind, origin.jurisdiction, destination.jurisdiction)
    if problem is not None:
        problems.add(view.value_line("instrument"), view.child("instrument"),
                     f"instrument {instrument.id} is {instrument.kind}, which {problem} "
                     f"(this corridor: {origin.name} {origin.jurisdiction} -> "
                     f"{destination.name} {destination.jurisdiction})")


def zone_misfit(kind: str, origin: str, destination: str) -> str | None:
    """Why an instrument of *kind* cannot govern a transfer between these jurisdictions,
    or None (see the module docstring for the rules)."""
    def cn(j: str) -> bool:
        return j.startswith("CN")

    if kind == "GBA-SC" and not ((cn(origin) and destination in ("HK", "MO"))
                                 or (cn(destination) and origin in ("HK", "MO"))):
        return "runs only between a mainland (CN*) zone and HK or MO"
    if kind in ("CN-SC", "CN-SA", "CN-CERT") and not (cn(origin) and not cn(destination)):
        return "governs exports from the mainland: origin CN*, destination outside it"
    if kind in ("EU-SCC", "EU-BCR") and not (origin in EEA and destination not in EEA):
        return "governs transfers from the EU/EEA to outside it"
    if kind == "HK-RMC" and origin != "HK":
        return "governs transfers out of HK: origin HK"
    if kind == "ASEAN-MCC" and origin not in ASEAN:
        return "governs transfers from an ASEAN member state"
    return None


def carries_personal_data(
    datasets: Mapping[str, Dataset],
    transform: Mapping[str, Mapping[str, Transform]],
    keys: Mapping[str, KeyTreatment],
) -> bool:
    """Whether any personal or sensitive field, or record key, crosses in some form: a
    field (or an enclosing record) that is dropped does not, nor a dropped key; a
    pseudonymized, masked or encrypted one does (it is still personal data)."""
    for name, fields in transform.items():
        dataset = datasets[name]
        if dataset.key_class in PERSONAL and keys.get(name) is not KeyTreatment.DROP:
            return True
        dropped = [f for f, t in fields.items() if t is Transform.DROP]
        for path in (p for p, c in dataset.fields.items() if c in PERSONAL):
            if not any(path == d or path.startswith(d + ".") for d in dropped):
                return True
    return False
