"""Secret bytes that never show themselves in a repr, a str, a log line or an error."""

from __future__ import annotations

import hmac


class SecretBytes:
    """Key material. ``repr``/``str`` say only how long it is; ``reveal()`` gives the bytes.

    Callers pass ``reveal()`` straight into a cipher constructor and do not keep
    the result in a variable (tracebacks that show locals would print it).
    Not hashable; equality is constant-time.
    """

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        if not isinstance(value, (bytes, bytearray)):
            raise TypeError("SecretBytes needs bytes")
        self._value = bytes(value)

    def reveal(self) -> bytes:
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return f"SecretBytes(<redacted {len(self._value)} bytes>)"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretBytes):
            return NotImplemented
        return hmac.compare_digest(self._value, other._value)

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling would copy key material into whatever stores the pickle.
        raise TypeError("SecretBytes cannot be pickled")
