"""pprof's profile.proto (github.com/google/pprof, proto/profile.proto) as a descriptor built by hand,
so the tests can parse our pprof output with the real ``protobuf`` runtime."""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto

# message -> (field name, number, type, repeated, message type name)
_MESSAGES = {
    "Profile": [
        ("sample_type", 1, _F.TYPE_MESSAGE, True, "ValueType"),
        ("sample", 2, _F.TYPE_MESSAGE, True, "Sample"),
        ("mapping", 3, _F.TYPE_MESSAGE, True, "Mapping"),
        ("location", 4, _F.TYPE_MESSAGE, True, "Location"),
        ("function", 5, _F.TYPE_MESSAGE, True, "Function"),
        ("string_table", 6, _F.TYPE_STRING, True, ""),
        ("drop_frames", 7, _F.TYPE_INT64, False, ""),
        ("keep_frames", 8, _F.TYPE_INT64, False, ""),
        ("time_nanos", 9, _F.TYPE_INT64, False, ""),
        ("duration_nanos", 10, _F.TYPE_INT64, False, ""),
        ("period_type", 11, _F.TYPE_MESSAGE, False, "ValueType"),
        ("period", 12, _F.TYPE_INT64, False, ""),
        ("comment", 13, _F.TYPE_INT64, True, ""),
        ("default_sample_type", 14, _F.TYPE_INT64, False, ""),
    ],
    "ValueType": [("type", 1, _F.TYPE_INT64, False, ""), ("unit", 2, _F.TYPE_INT64, False, "")],
    "Sample": [
        ("location_id", 1, _F.TYPE_UINT64, True, ""),
        ("value", 2, _F.TYPE_INT64, True, ""),
        ("label", 3, _F.TYPE_MESSAGE, True, "Label"),
    ],
    "Label": [
        ("key", 1, _F.TYPE_INT64, False, ""),
        ("str", 2, _F.TYPE_INT64, False, ""),
        ("num", 3, _F.TYPE_INT64, False, ""),
        ("num_unit", 4, _F.TYPE_INT64, False, ""),
    ],
    "Mapping": [
        ("id", 1, _F.TYPE_UINT64, False, ""),
        ("memory_start", 2, _F.TYPE_UINT64, False, ""),
        ("memory_limit", 3, _F.TYPE_UINT64, False, ""),
        ("file_offset", 4, _F.TYPE_UINT64, False, ""),
        ("filename", 5, _F.TYPE_INT64, False, ""),
        ("build_id", 6, _F.TYPE_INT64, False, ""),
        ("has_functions", 7, _F.TYPE_BOOL, False, ""),
        ("has_filenames", 8, _F.TYPE_BOOL, False, ""),
        ("has_line_numbers", 9, _F.TYPE_BOOL, False, ""),
        ("has_inline_frames", 10, _F.TYPE_BOOL, False, ""),
    ],
    "Location": [
        ("id", 1, _F.TYPE_UINT64, False, ""),
        ("mapping_id", 2, _F.TYPE_UINT64, False, ""),
        ("address", 3, _F.TYPE_UINT64, False, ""),
        ("line", 4, _F.TYPE_MESSAGE, True, "Line"),
        ("is_folded", 5, _F.TYPE_BOOL, False, ""),
    ],
    "Line": [
        ("function_id", 1, _F.TYPE_UINT64, False, ""),
        ("line", 2, _F.TYPE_INT64, False, ""),
        ("column", 3, _F.TYPE_INT64, False, ""),
    ],
    "Function": [
        ("id", 1, _F.TYPE_UINT64, False, ""),
        ("name", 2, _F.TYPE_INT64, False, ""),
        ("system_name", 3, _F.TYPE_INT64, False, ""),
        ("filename", 4, _F.TYPE_INT64, False, ""),
        ("start_line", 5, _F.TYPE_INT64, False, ""),
    ],
}


def _build():
    file = descriptor_pb2.FileDescriptorProto(
        name="memprof_test_profile.proto", package="perftools.profiles", syntax="proto3"
    )
    for name, fields in _MESSAGES.items():
        message = file.message_type.add(name=name)
        for field_name, number, kind, repeated, type_name in fields:
            field = message.field.add(
                name=field_name, number=number, type=kind, label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
            )
            if type_name:
                field.type_name = f".perftools.profiles.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("perftools.profiles.Profile"))


Profile = _build()
