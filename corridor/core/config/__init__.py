"""The corridor file -> a frozen, typed model, validated once at load.

model: the values (Config, Zone, Dataset, Corridor, ...); load: ``load_config``;
document: YAML with line numbers; datasets, corridors, policy: one section each;
rotation: a corridor's key-rotation schedule; audit: the ``audit:`` section;
instruments: the transfer instruments and a corridor's ``instrument:``; subjects: a
dataset's ``subject:``, a zone's ``thresholds:``, a corridor's ``purposes:`` and
``erasable:``. Modules of this package import
``.model``, never the package (that is what keeps them acyclic).
"""

from corridor.core.config.instruments import InstrumentState, instrument_state
from corridor.core.config.load import load_config
from corridor.core.config.model import (
    AuditSettings,
    BatchSettings,
    Config,
    Corridor,
    Dataset,
    FieldClass,
    Instrument,
    KeysConfig,
    KeyTreatment,
    OnReach,
    RecordClass,
    RecordKind,
    Thresholds,
    Transform,
    WireFormat,
    Zone,
)

__all__ = [
    "AuditSettings",
    "BatchSettings",
    "Config",
    "Corridor",
    "Dataset",
    "FieldClass",
    "Instrument",
    "InstrumentState",
    "KeyTreatment",
    "KeysConfig",
    "OnReach",
    "RecordClass",
    "RecordKind",
    "Thresholds",
    "Transform",
    "WireFormat",
    "Zone",
    "instrument_state",
    "load_config",
]
