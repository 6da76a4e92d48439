"""Scaffolding for the tests that write a corridor file: its usual pieces (the zones and the
trade.shipment dataset down to its schema line; the start of corridor hk-eu), writing and
loading a text, the errors a bad one is refused with, and edits of a test module's base text.
It owns no whole corridor file: plan_fixtures holds the plan tests' one, each config test
module its own ``BASE``."""

from __future__ import annotations

from pathlib import Path

import pytest

from corridor.core.config import Config, load_config
from corridor.core.errors import ConfigError, ConfigErrors

REPO = Path(__file__).resolve().parents[2]
SHIP = REPO / "schemas" / "trade" / "shipment.avsc"

ZONES = {
    "hk": "{bootstrap: 127.0.0.1:19092, jurisdiction: HK}",
    "eu": "{bootstrap: 127.0.0.1:29092, jurisdiction: EU}",
    "asean": "{bootstrap: 127.0.0.1:31092, jurisdiction: SG}",
}


def head(*zones: str) -> str:
    """The first lines of a corridor file: ``zones:`` and *zones* (hk and eu when none are
    named), one a line, then ``datasets:``, ``trade.shipment:`` and its schema line. What
    follows is the dataset's other keys, indented four spaces."""
    lines = ["zones:", *(f"  {zone}: {ZONES[zone]}" for zone in zones or ("hk", "eu")),
             "datasets:", "  trade.shipment:", f"    schema: {SHIP}"]
    return "\n".join(lines) + "\n"


# Six lines: zones on lines 1-3 (hk on 2, eu on 3), trade.shipment's schema on line 6.
HEAD = head()

# The corridors section down to corridor hk-eu's legal basis (six lines): hk -> eu carrying
# trade.shipment under DEPA. The corridor's other keys follow, indented four spaces.
HK_EU = """\
corridors:
  hk-eu:
    from: hk
    to: eu
    datasets: [trade.shipment]
    legal_basis: DEPA
"""


def line_of(text: str, line: str) -> int:
    """The number (from 1) of the one line of *text* that is *line*, spaces aside."""
    found = [n for n, each in enumerate(text.splitlines(), 1) if each.strip() == line.strip()]
    assert len(found) == 1, (line, found)
    return found[0]


def write(directory: Path, text: str, name: str = "corridors.yaml") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def load_text(directory: Path, text: str, name: str = "corridors.yaml") -> Config:
    return load_config(write(directory, text, name))


def errors_of(directory: Path, text: str) -> list[ConfigError]:
    """The errors *text* is refused with at load (fails the test if it loads)."""
    with pytest.raises(ConfigErrors) as info:
        load_text(directory, text)
    return info.value.errors


def only_error(directory: Path, text: str) -> ConfigError:
    """The one error *text* is refused with (fails the test on none or more than one)."""
    errors = errors_of(directory, text)
    assert len(errors) == 1, [e.render() for e in errors]
    return errors[0]


class CorridorFile:
    """A test module's base corridor file; a module binds its methods as ``edit`` and ``load``,
    which default to the base text."""

    def __init__(self, base: str) -> None:
        self.base = base

    def edit(self, old: str, new: str, text: str | None = None) -> str:
        """*text* (the base) with *old*, which must occur exactly once, replaced by *new*."""
        text = self.base if text is None else text
        assert text.count(old) == 1, old
        return text.replace(old, new)

    def load(self, directory: Path, text: str | None = None) -> Config:
        """*text* (the base) written to *directory* and loaded."""
        return load_text(directory, self.base if text is None else text)
