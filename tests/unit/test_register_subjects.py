"""The records of processing state what a corridor does for data subjects: the consent it
requires (purposes and the view's bound), the subject field, the erasable fields."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from corridor.core.config import load_config
from corridor.core.report import records_of_processing, register_document
from corridor.core.report.layout import register_layout
from corridor.core.report.render_md import markdown
from tests.unit.subject_fixtures import PURPOSE, subjects_config

TODAY = dt.date(2026, 12, 2)


def test_the_register_states_consent_subject_and_erasable_fields(tmp_path: Path) -> None:
    subjects_config(tmp_path)
    path = tmp_path / "corridors.yaml"
    text = path.read_text(encoding="utf-8").replace(
        f"    purposes: [{PURPOSE}]\n",
        f"    purposes: [{PURPOSE}]\n    consent_staleness_seconds: 12\n"
        "    erasable: [contact_email]\n")
    path.write_text(text, encoding="utf-8")
    config = load_config(path)
    doc = register_document(records_of_processing(config, TODAY), str(path), TODAY)
    entry = next(e for e in doc["corridors"] if e["corridor"] == "hk-eu")
    assert entry["consent"] == {"purposes": [PURPOSE], "staleness_seconds": 12}
    [dataset] = [d for d in entry["datasets"] if d["dataset"] == "trade.shipment"]
    assert (dataset["subject"], dataset["erasable"]) == ("contact_email", ["contact_email"])
    others = [e for e in doc["corridors"] if not config.corridors[e["corridor"]].purposes]
    assert all(e["consent"] is None for e in others)
    md = markdown(register_layout(doc))
    assert f"{PURPOSE} (the processor's view of it at most 12 s old)" in md
    assert "encrypt, erasable per subject" in md
    assert "named by contact_email" in md
