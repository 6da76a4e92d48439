"""The connectors' operator errors (bad options, an unusable target); bad rows are data."""

from __future__ import annotations

from corridor.core.errors import CorridorError


class ConnectError(CorridorError):
    """A connector cannot run as asked: ``what`` names the file, table or option at fault."""

    def __init__(self, what: str, message: str) -> None:
        self.what, self.message = what, message
        super().__init__(f"{what}: {message}")

    def fields(self) -> dict[str, object]:
        return {"what": self.what}
