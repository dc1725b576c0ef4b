"""Rust symbol names as people read them: the legacy (``_ZN...17h<hash>E``) and v0 (``_R...``) manglings.

Written from the two mangling schemes' public descriptions (rustc's legacy scheme and RFC 2603).
``demangle_rust`` returns None for anything that is not a Rust symbol, so that C++ names go on to
the C++ demangler. By default hashes and crate disambiguators are left out (``Vec<T>::with_capacity``,
not ``...::with_capacity::hdb16...``); ``hashes=True`` keeps them, in the form binutils prints.
"""

from __future__ import annotations

import codecs
import re

__all__ = ["demangle_rust"]

_LEGACY_HASH = re.compile(r"h[0-9a-f]{16}")
# $-escapes of the legacy scheme: the characters Rust paths have and linker symbols cannot.
_ESCAPES = {
    "SP": "@",
    "BP": "*",
    "RF": "&",
    "LT": "<",
    "GT": ">",
    "LP": "(",
    "RP": ")",
    "C": ",",
}
_BASIC_TYPES = {
    "a": "i8",
    "b": "bool",
    "c": "char",
    "d": "f64",
    "e": "str",
    "f": "f32",
    "h": "u8",
    "i": "isize",
    "j": "usize",
    "l": "i32",
    "m": "u32",
    "n": "i128",
    "o": "u128",
    "s": "i16",
    "t": "u16",
    "x": "i64",
    "y": "u64",
    "z": "!",
    "u": "()",
    "v": "...",
    "p": "_",
}
_SIGNED = {"a", "s", "l", "x", "n", "i"}
_UNSIGNED = {"h", "t", "m", "y", "o", "j"}
_MAX_DEPTH = 200  # a corrupt or hostile name cannot recurse without end


def demangle_rust(name: str, hashes: bool = False) -> str | None:
    """The readable path of a Rust symbol (legacy or v0), or None when ``name`` is not one."""
    # LLVM may add a suffix after a dot (.llvm.1234, .cold): it is not part of the name.
    if name.startswith("_R"):
        body, _, _suffix = name[2:].partition(".")
        try:
            return _V0(body, hashes).symbol()
        except (_Invalid, IndexError, RecursionError, ValueError):
            return None
    if name.startswith("_ZN"):
        return _legacy(name, hashes)
    return None


# ---- legacy -------------------------------------------------------------------------------------


def _legacy(name: str, hashes: bool) -> str | None:
    """``_ZN`` {<length><identifier>} ``E``, with a last ``17h<16 hex>`` component for a Rust one."""
    position = 3
    parts: list[str] = []
    while position < len(name) and name[position] != "E":
        match = re.match(r"[1-9][0-9]*", name[position:])
        if match is None:
            return None
        length = int(match.group())
        position += len(match.group())
        parts.append(name[position : position + length])
        position += length
        if position > len(name):
            return None
    tail = name[position + 1 :]
    if position >= len(name) or (tail and not tail.startswith(".")) or not parts:
        return None
    if not _LEGACY_HASH.fullmatch(parts[-1]):
        return None  # a C++ nested name: the C++ demangler reads it
    if not hashes:
        parts.pop()
    words = []
    for part in parts:
        word = _unescape(part)
        if word is None:
            return None
        words.append(word)
    return "::".join(words)


def _unescape(part: str) -> str | None:
    """One legacy path component with its ``$..$`` escapes and ``..`` (``::``) replaced."""
    if part.startswith("_$"):
        part = part[1:]
    out: list[str] = []
    index = 0
    while index < len(part):
        char = part[index]
        if char == "$":
            end = part.find("$", index + 1)
            if end < 0:
                return None
            code = part[index + 1 : end]
            if code in _ESCAPES:
                out.append(_ESCAPES[code])
            elif code.startswith("u") and re.fullmatch(r"[0-9a-f]+", code[1:]):
                out.append(chr(int(code[1:], 16)))
            else:
                return None
            index = end + 1
        elif part.startswith("..", index):
            out.append("::")
            index += 2
        else:
            out.append(char)
            index += 1
    return "".join(out)


# ---- v0 -----------------------------------------------------------------------------------------


class _Invalid(Exception):
    """The name does not follow the v0 grammar."""


class _V0:
    """A recursive-descent reader of one v0 name (after ``_R``), printing as it parses."""

    def __init__(self, text: str, hashes: bool) -> None:
        self.text = text
        self.hashes = hashes
        self.position = 0
        self.depth = 0
        self.bound_lifetimes = 0

    def symbol(self) -> str:
        """The whole name: the path; an instantiating crate that may follow is not printed."""
        if self.text[:1].isdigit():  # an encoding version: only 0 exists
            raise _Invalid
        out = self.path(value=True)
        if self.position < len(self.text):
            self.path(value=False)  # the instantiating crate
        if self.position != len(self.text):
            raise _Invalid
        return out

    # -- helpers

    def peek(self) -> str:
        return self.text[self.position] if self.position < len(self.text) else ""

    def take(self) -> str:
        char = self.text[self.position]
        self.position += 1
        return char

    def eat(self, char: str) -> bool:
        if self.peek() == char:
            self.position += 1
            return True
        return False

    def base62(self) -> int:
        """A base-62 number ending in ``_``: ``_`` is 0, otherwise the digits' value plus one."""
        if self.eat("_"):
            return 0
        value = 0
        while not self.eat("_"):
            char = self.take()
            if char.isdigit():
                digit = ord(char) - ord("0")
            elif "a" <= char <= "z":
                digit = ord(char) - ord("a") + 10
            elif "A" <= char <= "Z":
                digit = ord(char) - ord("A") + 36
            else:
                raise _Invalid
            value = value * 62 + digit
        return value + 1

    def optional_number(self, tag: str) -> int:
        """``tag`` base-62-number, + 1, or 0 when absent (disambiguators, binders)."""
        return self.base62() + 1 if self.eat(tag) else 0

    def decimal(self) -> int:
        start = self.position
        if self.eat("0"):
            return 0  # no leading zeros: "00" is two numbers (two empty identifiers)
        while self.peek().isdigit():
            self.position += 1
        if start == self.position:
            raise _Invalid
        return int(self.text[start : self.position])

    def identifier(self) -> str:
        """An undisambiguated identifier: ``u`` for punycode, a length, an optional ``_``, the bytes."""
        punycode = self.eat("u")
        length = self.decimal()
        self.eat("_")
        raw = self.text[self.position : self.position + length]
        if len(raw) != length:
            raise _Invalid
        self.position += length
        if punycode:
            # Rust writes punycode with "_" where RFC 3492 has "-" before the encoded part.
            basic, sep, encoded = raw.rpartition("_")
            raw = codecs.decode((basic + "-" + encoded) if sep else encoded, "punycode")
        return raw

    def backref(self, parse):
        """Parse what a ``B`` back-reference (just read) points to, an earlier offset, then come back."""
        start = self.position - 1
        target = self.base62()
        if target >= start:
            raise _Invalid  # a backref only points backwards
        saved = self.position
        self.position = target
        try:
            return parse()
        finally:
            self.position = saved

    def enter(self) -> None:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise _Invalid

    # -- grammar

    def path(self, value: bool) -> str:
        """A path; in a value (a function) generic arguments print as ``::<..>``, in a type as ``<..>``."""
        self.enter()
        try:
            tag = self.take()
            if tag == "C":
                disambiguator = self.optional_number("s")
                name = self.identifier()
                if self.hashes and disambiguator:
                    return f"{name}[{disambiguator:x}]"
                return name
            if tag == "N":
                namespace = self.take()
                if not namespace.isalpha():
                    raise _Invalid
                parent = self.path(value)
                disambiguator = self.optional_number("s")
                name = self.identifier()
                if namespace.isupper():
                    kind = {"C": "closure", "S": "shim"}.get(namespace, namespace)
                    inner = f"{kind}:{name}" if name else kind
                    return f"{parent}::{{{inner}#{disambiguator}}}"
                return f"{parent}::{name}" if name else parent
            if tag == "M":
                self.impl_path()
                self_type = self.type()
                # An inherent impl of a named type reads as in the source: Builder::grow_buffer.
                if not self.hashes and self_type[:1].isalpha() and not self_type.startswith("dyn "):
                    return self_type
                return f"<{self_type}>"
            if tag == "X":
                self.impl_path()
                self_type = self.type()
                return f"<{self_type} as {self.path(value=False)}>"
            if tag == "Y":
                self_type = self.type()
                return f"<{self_type} as {self.path(value=False)}>"
            if tag == "I":
                base = self.path(value)
                args = []
                while not self.eat("E"):
                    args.append(self.generic_arg())
                return f"{base}{'::' if value else ''}<{', '.join(args)}>"
            if tag == "B":
                return self.backref(lambda: self.path(value))
            raise _Invalid
        finally:
            self.depth -= 1

    def impl_path(self) -> None:
        """The impl's own path (where it is written): not printed, as rustc-demangle does."""
        self.optional_number("s")
        self.path(value=False)

    def generic_arg(self) -> str:
        if self.peek() == "L":
            self.take()
            return self.lifetime(self.base62())
        if self.eat("K"):
            return self.const()
        return self.type()

    def lifetime(self, index: int) -> str:
        if index == 0:
            return "'_"
        depth = self.bound_lifetimes - index
        if depth < 0:
            raise _Invalid
        return "'" + (chr(ord("a") + depth) if depth < 26 else f"_{depth}")

    def binder(self) -> int:
        """Lifetimes a ``for<...>`` binds; printed as ``for<'a, ..> ``."""
        return self.optional_number("G")

    def for_lifetimes(self, count: int) -> str:
        if not count:
            return ""
        names = [self.lifetime_name(self.bound_lifetimes + i) for i in range(count)]
        return f"for<{', '.join(names)}> "

    @staticmethod
    def lifetime_name(depth: int) -> str:
        return "'" + (chr(ord("a") + depth) if depth < 26 else f"_{depth}")

    def type(self) -> str:
        self.enter()
        try:
            tag = self.peek()
            if tag in _BASIC_TYPES:
                self.take()
                return _BASIC_TYPES[tag]
            if tag in "CNMXYI":
                return self.path(value=False)
            self.take()
            if tag == "A":
                element = self.type()
                return f"[{element}; {self.const()}]"
            if tag == "S":
                return f"[{self.type()}]"
            if tag == "T":
                items = []
                while not self.eat("E"):
                    items.append(self.type())
                return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
            if tag in "RQ":
                lifetime = ""
                if self.eat("L"):
                    index = self.base62()
                    lifetime = self.lifetime(index) + " " if index else ""
                mutable = "mut " if tag == "Q" else ""
                return f"&{lifetime}{mutable}{self.type()}"
            if tag == "P":
                return f"*const {self.type()}"
            if tag == "O":
                return f"*mut {self.type()}"
            if tag == "F":
                return self.fn_sig()
            if tag == "D":
                return self.dyn_bounds()
            if tag == "B":
                return self.backref(self.type)
            raise _Invalid
        finally:
            self.depth -= 1

    def fn_sig(self) -> str:
        bound = self.binder()
        prefix = self.for_lifetimes(bound)
        self.bound_lifetimes += bound
        try:
            unsafe = "unsafe " if self.eat("U") else ""
            abi = ""
            if self.eat("K"):
                abi = 'extern "C" ' if self.eat("C") else f'extern "{self.identifier().replace("_", "-")}" '
            params = []
            while not self.eat("E"):
                params.append(self.type())
            returns = self.type()
            arrow = "" if returns == "()" else f" -> {returns}"
            return f"{prefix}{unsafe}{abi}fn({', '.join(params)}){arrow}"
        finally:
            self.bound_lifetimes -= bound

    def dyn_bounds(self) -> str:
        bound = self.binder()
        prefix = self.for_lifetimes(bound)
        self.bound_lifetimes += bound
        try:
            traits = []
            while not self.eat("E"):
                traits.append(self.dyn_trait())
            text = "dyn " + prefix + " + ".join(traits)
        finally:
            self.bound_lifetimes -= bound
        if not self.eat("L"):
            raise _Invalid
        index = self.base62()
        return f"{text} + {self.lifetime(index)}" if index else text

    def dyn_trait(self) -> str:
        trait = self.path(value=False)
        bindings = []
        while self.eat("p"):
            name = self.identifier()
            bindings.append(f"{name} = {self.type()}")
        if not bindings:
            return trait
        if trait.endswith(">"):
            return f"{trait[:-1]}, {', '.join(bindings)}>"
        return f"{trait}<{', '.join(bindings)}>"

    def const(self) -> str:
        if self.eat("p"):
            return "_"
        if self.peek() == "B":
            self.take()
            return self.backref(self.const)
        kind = self.take()
        negative = self.eat("n")
        start = self.position
        while self.peek() != "_":
            if self.take() not in "0123456789abcdef":
                raise _Invalid
        digits = self.text[start : self.position]
        self.take()
        value = int(digits, 16) if digits else 0
        if kind in _SIGNED or kind in _UNSIGNED:
            number = str(-value if negative else value)
            return f"{number}: {_BASIC_TYPES[kind]}" if self.hashes else number
        if kind == "b" and value in (0, 1):
            return "true" if value else "false"
        if kind == "c":
            return repr(chr(value))
        raise _Invalid
