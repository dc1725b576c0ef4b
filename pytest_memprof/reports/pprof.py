"""A small encoder of pprof's ``profile.proto`` (github.com/google/pprof, proto/profile.proto).

Only what a memory profile needs: sample types, samples with labels, locations with one line each,
functions and the string table. Protocol buffers' wire format is a few lines of varints, so the
package needs no protobuf runtime; the tests parse the output back with the ``protobuf`` package.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from ..model import Frame

# Field numbers of profile.proto.
_PROFILE_SAMPLE_TYPE, _PROFILE_SAMPLE, _PROFILE_LOCATION, _PROFILE_FUNCTION, _PROFILE_STRING_TABLE = 1, 2, 4, 5, 6
_PROFILE_TIME_NANOS, _PROFILE_DURATION_NANOS, _PROFILE_COMMENT, _PROFILE_DEFAULT_SAMPLE_TYPE = 9, 10, 13, 14
_VARINT, _LENGTH_DELIMITED = 0, 2


class Sample(NamedTuple):
    """One sample: frames innermost first (pprof's order), a value per sample type, labels (key, str or int)."""

    frames: tuple[Frame, ...]
    values: tuple[int, ...]
    labels: tuple[tuple[str, str | int], ...] = ()


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int64 as protobuf writes it: two's complement in ten bytes
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _key(field: int, wire_type: int) -> bytes:
    return _varint(field << 3 | wire_type)


def _int_field(field: int, value: int) -> bytes:
    # proto3 leaves fields at their default (0) out.
    return _key(field, _VARINT) + _varint(value) if value else b""


def _bytes_field(field: int, payload: bytes) -> bytes:
    return _key(field, _LENGTH_DELIMITED) + _varint(len(payload)) + payload


def _packed(field: int, values: Iterable[int]) -> bytes:
    return _bytes_field(field, b"".join(_varint(value) for value in values))


class _Strings:
    def __init__(self) -> None:
        self.table: list[str] = [""]  # index 0 is the empty string, as profile.proto requires
        self._ids: dict[str, int] = {"": 0}

    def id(self, text: str) -> int:
        index = self._ids.get(text)
        if index is None:
            index = self._ids[text] = len(self.table)
            self.table.append(text)
        return index


def encode_profile(
    *,
    sample_types: Sequence[tuple[str, str]],
    samples: Iterable[Sample],
    time_nanos: int = 0,
    duration_nanos: int = 0,
    comments: Sequence[str] = (),
) -> bytes:
    """The serialised (not compressed) Profile message; the first sample type is the default one."""
    strings = _Strings()
    functions: dict[tuple[str, str], int] = {}  # (name, file) -> function id (ids start at 1)
    locations: dict[tuple[int, int], int] = {}  # (function id, line) -> location id
    body = bytearray()
    for name, unit in sample_types:
        body += _bytes_field(_PROFILE_SAMPLE_TYPE, _int_field(1, strings.id(name)) + _int_field(2, strings.id(unit)))
    for sample in samples:
        location_ids = []
        for frame in sample.frames:
            function = functions.setdefault((frame.function, frame.file), len(functions) + 1)
            location_ids.append(locations.setdefault((function, frame.line), len(locations) + 1))
        message = _packed(1, location_ids) + _packed(2, sample.values)
        for key, value in sample.labels:
            if isinstance(value, str):
                label = _int_field(1, strings.id(key)) + _int_field(2, strings.id(value))
            else:
                label = _int_field(1, strings.id(key)) + _int_field(3, value)
            message += _bytes_field(3, label)
        body += _bytes_field(_PROFILE_SAMPLE, message)
    for (function, line), location in locations.items():
        line_message = _int_field(1, function) + _int_field(2, line)
        body += _bytes_field(_PROFILE_LOCATION, _int_field(1, location) + _bytes_field(4, line_message))
    for (name, file), function in functions.items():
        name_id = strings.id(name)
        body += _bytes_field(
            _PROFILE_FUNCTION,
            _int_field(1, function) + _int_field(2, name_id) + _int_field(3, name_id) + _int_field(4, strings.id(file)),
        )
    comment_ids = [strings.id(comment) for comment in comments if comment]
    for text in strings.table:
        body += _bytes_field(_PROFILE_STRING_TABLE, text.encode("utf-8", errors="replace"))
    body += _int_field(_PROFILE_TIME_NANOS, time_nanos) + _int_field(_PROFILE_DURATION_NANOS, duration_nanos)
    if comment_ids:
        body += _packed(_PROFILE_COMMENT, comment_ids)
    # default_sample_type names the first type; pprof shows it unless told otherwise.
    body += _int_field(_PROFILE_DEFAULT_SAMPLE_TYPE, strings.id(sample_types[0][0]) if sample_types else 0)
    return bytes(body)
