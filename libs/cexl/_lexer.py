"""The tokenizer: CEXL is written in Go's expression syntax, so literals follow Go's rules
(escapes, raw `...` strings, 'x' rune literals, comments) and so do the operators.

Tokens carry their decoded value; operators Go has but CEXL lacks ("-", "*", "=", ...) are
still tokens, so the parser can name them in its error.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from libs.cexl._errors import CexlError

_TWO_CHAR_OPERATORS = frozenset({"&&", "||", "==", "!=", "<=", ">=", "<<", ">>", "&^", "<-", ":=", "++", "--"})
_ONE_CHAR_OPERATORS = frozenset("<>|+!()[],.-*/%&^=:;{}~")
_DIGITS = frozenset("0123456789")
_OCTAL = frozenset("01234567")
_HEX = frozenset("0123456789abcdefABCDEF")
_SIMPLE_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92}
_LITERAL_NAMES = {'"': "string", "'": "rune"}
MAX_INT64 = 2**63 - 1


class Token(NamedTuple):
    kind: str  # "ident", "int", "float", "string", "op" or "eof"
    text: str  # the source text (for "op", the operator itself)
    pos: int
    value: Any = None


def tokenize(text: str) -> list[Token]:
    return _Lexer(text).run()


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[Token] = []

    def run(self) -> list[Token]:
        text, i, n = self.text, 0, len(self.text)
        while i < n:
            ch = text[i]
            if ch in " \t\r\n":
                i += 1
            elif text.startswith("//", i):
                end = text.find("\n", i)
                i = n if end < 0 else end
            elif text.startswith("/*", i):
                end = text.find("*/", i + 2)
                if end < 0:
                    raise CexlError(i, "comment not terminated")
                i = end + 2
            elif ch.isalpha() or ch == "_":
                start = i
                while i < n and (text[i].isalnum() or text[i] == "_"):
                    i += 1
                self.tokens.append(Token("ident", text[start:i], start))
            elif ch in _DIGITS or (ch == "." and i + 1 < n and text[i + 1] in _DIGITS):
                i = self._number(i)
            elif ch in "\"'`":
                i = self._quoted(i)
            elif text[i:i + 2] in _TWO_CHAR_OPERATORS:
                self.tokens.append(Token("op", text[i:i + 2], i))
                i += 2
            elif ch in _ONE_CHAR_OPERATORS:
                self.tokens.append(Token("op", ch, i))
                i += 1
            else:
                raise CexlError(i, f"illegal character U+{ord(ch):04X} {ch!r}")
        self.tokens.append(Token("eof", "", n))
        return self.tokens

    def _number(self, start: int) -> int:
        text, n = self.text, len(self.text)
        if text[start:start + 2].lower() in ("0x", "0b", "0o"):
            raise CexlError(start, "only decimal number literals are supported")
        i = start
        while i < n and text[i] in _DIGITS:
            i += 1
        is_float = False
        if i < n and text[i] == ".":
            is_float = True
            i += 1
            while i < n and text[i] in _DIGITS:
                i += 1
        if i < n and text[i] in "eE":
            is_float = True
            i += 1
            if i < n and text[i] in "+-":
                i += 1
            if i >= n or text[i] not in _DIGITS:
                raise CexlError(start, "exponent has no digits")
            while i < n and text[i] in _DIGITS:
                i += 1
        if i < n and (text[i].isalnum() or text[i] == "_"):
            raise CexlError(start, f"invalid number literal {text[start:i + 1]!r}")
        literal = text[start:i]
        if is_float:
            value = float(literal)
            if value in (float("inf"), float("-inf")):
                raise CexlError(start, f"number literal {literal} is out of range")
            self.tokens.append(Token("float", literal, start, value))
            return i
        # Go scans a leading 0 as octal; Mixer then reads the digits as decimal (017 is 17).
        if literal[0] == "0" and not set(literal) <= _OCTAL:
            raise CexlError(start, f"invalid digit in octal literal {literal}")
        number = int(literal, 10)
        if number > MAX_INT64:
            raise CexlError(start, f"integer literal {literal} does not fit in INT64")
        self.tokens.append(Token("int", literal, start, number))
        return i

    def _quoted(self, start: int) -> int:
        text, quote = self.text, self.text[start]
        if quote == "`":
            end = text.find("`", start + 1)
            if end < 0:
                raise CexlError(start, "raw string literal not terminated")
            # Go drops carriage returns from raw strings.
            self.tokens.append(Token("string", text[start:end + 1], start, text[start + 1:end].replace("\r", "")))
            return end + 1
        out = bytearray()
        chars = 0
        i = start + 1
        while True:
            if i >= len(text) or text[i] == "\n":
                raise CexlError(start, f"{_LITERAL_NAMES[quote]} literal not terminated")
            ch = text[i]
            if ch == quote:
                break
            chars += 1
            if ch != "\\":
                out += ch.encode("utf-8", "surrogatepass")
                i += 1
                continue
            i = self._escape(i, quote, out)
        if quote == "'" and chars != 1:
            raise CexlError(start, "empty rune literal" if chars == 0 else "more than one character in rune literal")
        try:
            value = out.decode("utf-8")
        except UnicodeDecodeError:
            raise CexlError(start, "string literal is not valid UTF-8") from None
        self.tokens.append(Token("string", text[start:i + 1], start, value))
        return i + 1

    def _escape(self, i: int, quote: str, out: bytearray) -> int:
        """Decodes the escape at text[i] (a backslash) into `out`; returns the index after it."""
        text = self.text
        kind = text[i + 1:i + 2]
        if kind in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[kind])
            return i + 2
        if kind == quote:
            out += quote.encode()
            return i + 2
        if kind in _OCTAL or kind in ("x", "u", "U"):
            start, width, base, digits = (i + 1, 3, 8, _OCTAL) if kind in _OCTAL else (
                i + 2, {"x": 2, "u": 4, "U": 8}[kind], 16, _HEX)
            code = text[start:start + width]
            if len(code) != width or not set(code) <= digits:
                raise CexlError(i, "invalid escape sequence")
            value = int(code, base)
            if kind in "uU":
                if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
                    raise CexlError(i, "escape sequence is not a valid Unicode code point")
                out += chr(value).encode()
            elif value > 255:
                raise CexlError(i, "octal escape value > 255")
            elif quote == "'":
                # In a rune literal a byte escape names a code point.
                out += chr(value).encode()
            else:
                out.append(value)
            return start + width
        raise CexlError(i, "unknown escape sequence")
