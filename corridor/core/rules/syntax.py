"""Rule text -> untyped syntax tree: a hand-written tokenizer and recursive-descent parser.

The rule language is deliberately small (see ``corridor.core.rules`` for the full
grammar and semantics). Nothing here evaluates or imports the rule text as
Python: the text is only ever read character by character.

Every node carries ``column``: the 1-based character position in the rule text
of the token that starts it, used in ``RuleError`` messages. Newlines count as
one character, so a multi-line YAML rule still has an unambiguous position.
"""

from __future__ import annotations

from dataclasses import dataclass

from corridor.core.errors import RuleError

KEYWORDS = frozenset({"and", "or", "not", "in", "is", "null", "true", "false"})
FUNCTIONS = frozenset({"is_null", "is_not_null", "is_nan", "is_finite"})
COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">="})

_IDENT_START = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"
_IDENT_CHARS = _IDENT_START + "0123456789"
_DIGITS = "0123456789"
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "r": "\r", "0": "\0"}
# Characters people bring from other languages, with the spelling this language uses.
_HINTS = {"=": "use '==' to compare", "!": "use 'not' or '!='", "&": "use 'and'", "|": "use 'or'"}


@dataclass(frozen=True)
class Token:
    kind: str  # "ident" (dotted path or function name), "keyword", "string", "int", "float", "op", "eof"
    text: str  # source spelling; for strings the decoded value; keywords lower-cased
    column: int


# ---------------------------------------------------------------- syntax tree


@dataclass(frozen=True)
class FieldRef:
    path: tuple[str, ...]
    column: int

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True)
class Literal:
    """A constant. ``kind`` is "string", "int", "float" or "bool"; ``text`` keeps the
    source spelling of numbers so decimal comparisons can be exact."""

    value: str | int | float | bool
    kind: str
    text: str
    column: int


@dataclass(frozen=True)
class Compare:
    op: str
    left: Node
    right: Node
    column: int  # of the operator


@dataclass(frozen=True)
class InList:
    operand: Node
    values: tuple[Literal, ...]
    negated: bool
    column: int  # of 'in' (or of 'not' in 'not in')


@dataclass(frozen=True)
class NullCheck:
    operand: Node
    negated: bool  # True for 'is not null' / is_not_null(...)
    column: int


@dataclass(frozen=True)
class FloatCheck:
    func: str  # "is_nan" or "is_finite"
    operand: Node
    column: int


@dataclass(frozen=True)
class Not:
    operand: Node
    column: int


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" or "or"
    left: Node
    right: Node
    column: int  # of the operator


Node = FieldRef | Literal | Compare | InList | NullCheck | FloatCheck | Not | BoolOp


# ---------------------------------------------------------------- tokenizer


def tokenize(text: str) -> list[Token]:
    """Split rule text into tokens; raises RuleError on a character that starts no token."""
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in _IDENT_START:
            i = _read_ident(text, i, tokens)
        elif ch in _DIGITS:
            i = _read_number(text, i, tokens)
        elif ch in "'\"":
            i = _read_string(text, i, tokens)
        elif text.startswith(("==", "!=", "<=", ">="), i):
            tokens.append(Token("op", text[i : i + 2], i + 1))
            i += 2
        elif ch in "<>()[],-":
            tokens.append(Token("op", ch, i + 1))
            i += 1
        else:
            hint = f"; {_HINTS[ch]}" if ch in _HINTS else ""
            raise RuleError(text, f"unexpected character {ch!r}{hint}", i + 1)
    tokens.append(Token("eof", "", len(text) + 1))
    return tokens


def _read_ident(text: str, start: int, out: list[Token]) -> int:
    i = start
    while True:
        while i < len(text) and text[i] in _IDENT_CHARS:
            i += 1
        # A dot continues a path only when a name follows it.
        if i + 1 < len(text) and text[i] == "." and text[i + 1] in _IDENT_START:
            i += 1
            continue
        break
    word = text[start:i]
    if i < len(text) and text[i] == ".":
        raise RuleError(text, f"expected a field name after '{word}.'", i + 2)
    if word.lower() in KEYWORDS:
        out.append(Token("keyword", word.lower(), start + 1))
    else:
        out.append(Token("ident", word, start + 1))
    return i


def _read_number(text: str, start: int, out: list[Token]) -> int:
    i = start
    while i < len(text) and text[i] in _DIGITS:
        i += 1
    kind = "int"
    if i + 1 < len(text) and text[i] == "." and text[i + 1] in _DIGITS:
        kind = "float"
        i += 1
        while i < len(text) and text[i] in _DIGITS:
            i += 1
    if i < len(text) and text[i] in "eE":
        j = i + 1
        if j < len(text) and text[j] in "+-":
            j += 1
        if j < len(text) and text[j] in _DIGITS:
            kind = "float"
            i = j
            while i < len(text) and text[i] in _DIGITS:
                i += 1
    if i < len(text) and (text[i] in _IDENT_CHARS or text[i] == "."):
        end = i
        while end < len(text) and (text[end] in _IDENT_CHARS or text[end] == "."):
            end += 1
        raise RuleError(text, f"invalid number {text[start:end]!r}", start + 1)
    out.append(Token(kind, text[start:i], start + 1))
    return i


def _read_string(text: str, start: int, out: list[Token]) -> int:
    quote = text[start]
    chars: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == quote:
            out.append(Token("string", "".join(chars), start + 1))
            return i + 1
        if ch != "\\":
            chars.append(ch)
            i += 1
            continue
        esc = text[i + 1 : i + 2]
        if esc in _ESCAPES:
            chars.append(_ESCAPES[esc])
            i += 2
        elif esc == "u" and _is_hex(text[i + 2 : i + 6]):
            chars.append(chr(int(text[i + 2 : i + 6], 16)))
            i += 6
        else:
            raise RuleError(text, f"unknown escape '\\{esc}' in string", i + 1)
    raise RuleError(text, "unterminated string", start + 1)


def _is_hex(s: str) -> bool:
    return len(s) == 4 and all(c in "0123456789abcdefABCDEF" for c in s)


# ---------------------------------------------------------------- parser


def parse(text: str) -> Node:
    """Parse rule text into a syntax tree. Raises RuleError with the 1-based column.

    Precedence, loosest first: ``or``, ``and``, ``not``, then one comparison /
    ``in`` / ``is null`` per operand pair (``a < b < c`` is refused).
    """
    return _Parser(text).parse()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0

    # -- helpers

    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def advance(self) -> Token:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def at(self, kind: str, text: str | None = None) -> bool:
        return self.tok.kind == kind and (text is None or self.tok.text == text)

    def expect(self, kind: str, text: str, what: str) -> Token:
        if not self.at(kind, text):
            self.fail(f"expected {what}, got {describe(self.tok)}")
        return self.advance()

    def fail(self, message: str, column: int | None = None) -> None:
        raise RuleError(self.text, message, column if column is not None else self.tok.column)

    # -- grammar

    def parse(self) -> Node:
        if self.at("eof"):
            self.fail("empty rule")
        node = self.or_expr()
        if not self.at("eof"):
            self.fail(f"unexpected {describe(self.tok)}")
        return node

    def or_expr(self) -> Node:
        node = self.and_expr()
        while self.at("keyword", "or"):
            op = self.advance()
            node = BoolOp("or", node, self.and_expr(), op.column)
        return node

    def and_expr(self) -> Node:
        node = self.not_expr()
        while self.at("keyword", "and"):
            op = self.advance()
            node = BoolOp("and", node, self.not_expr(), op.column)
        return node

    def not_expr(self) -> Node:
        if self.at("keyword", "not"):
            op = self.advance()
            return Not(self.not_expr(), op.column)
        return self.predicate()

    def predicate(self) -> Node:
        left = self.operand()
        tok = self.tok
        if tok.kind == "op" and tok.text in COMPARISONS:
            self.advance()
            node: Node = Compare(tok.text, left, self.operand(), tok.column)
        elif self.at("keyword", "in"):
            self.advance()
            node = InList(left, self.literal_list(), False, tok.column)
        elif self.at("keyword", "not") and self.tokens[self.pos + 1].text == "in":
            self.pos += 2
            node = InList(left, self.literal_list(), True, tok.column)
        elif self.at("keyword", "is"):
            self.advance()
            negated = self.at("keyword", "not")
            if negated:
                self.advance()
            self.expect(
                "keyword", "null", "'null' after 'is'" if not negated else "'null' after 'is not'"
            )
            return NullCheck(left, negated, tok.column)
        else:
            return left
        if self.tok.kind == "op" and self.tok.text in COMPARISONS:
            self.fail(f"unexpected {describe(self.tok)}: comparisons do not chain; use 'and'")
        return node

    def operand(self) -> Node:
        tok = self.tok
        if self.at("op", "("):
            self.advance()
            node = self.or_expr()
            self.expect("op", ")", "')'")
            return node
        if tok.kind == "ident":
            self.advance()
            if self.at("op", "("):
                return self.call(tok)
            return FieldRef(tuple(tok.text.split(".")), tok.column)
        if self.at("keyword", "null"):
            self.fail("null can only be tested with 'x is null', 'x is not null' or is_null(x)")
        return self.literal()

    def call(self, name: Token) -> Node:
        func = name.text.lower()
        if func not in FUNCTIONS:
            known = ", ".join(sorted(FUNCTIONS))
            self.fail(f"unknown function '{name.text}' (known: {known})", name.column)
        self.advance()  # '('
        if self.at("op", ")"):
            self.fail(f"{func}() takes one argument")
        arg = self.or_expr()
        if self.at("op", ","):
            self.fail(f"{func}() takes one argument")
        self.expect("op", ")", "')'")
        if func in ("is_null", "is_not_null"):
            return NullCheck(arg, func == "is_not_null", name.column)
        return FloatCheck(func, arg, name.column)

    def literal_list(self) -> tuple[Literal, ...]:
        self.expect("op", "[", "'[' to start a list")
        values: list[Literal] = []
        while not self.at("op", "]"):
            if self.at("keyword", "null"):
                self.fail("null is not allowed in a list; add 'or x is null'")
            values.append(self.literal())
            if not self.at("op", ","):
                break
            self.advance()
        self.expect("op", "]", "',' or ']'")
        return tuple(values)

    def literal(self) -> Literal:
        tok = self.tok
        if tok.kind == "string":
            self.advance()
            return Literal(tok.text, "string", tok.text, tok.column)
        if tok.kind == "keyword" and tok.text in ("true", "false"):
            self.advance()
            return Literal(tok.text == "true", "bool", tok.text, tok.column)
        sign = ""
        if self.at("op", "-"):
            self.advance()
            sign = "-"
            if self.tok.kind not in ("int", "float"):
                self.fail(f"expected a number after '-', got {describe(self.tok)}")
        num = self.tok
        if num.kind == "int":
            self.advance()
            return Literal(int(sign + num.text), "int", sign + num.text, tok.column)
        if num.kind == "float":
            self.advance()
            return Literal(float(sign + num.text), "float", sign + num.text, tok.column)
        self.fail(f"expected a field, a value or '(', got {describe(tok)}")
        raise AssertionError("unreachable")


def describe(tok: Token) -> str:
    """How a token is named in an error message."""
    if tok.kind == "eof":
        return "end of rule"
    if tok.kind == "string":
        return f"string {tok.text!r}"
    return f"'{tok.text}'"
