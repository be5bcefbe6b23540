"""The Sparkplug B protobuf schema (spec 6.4, "Sparkplug B Payload Definition", and its Google
Protocol Buffer schema), described here in code from the specification, not copied from Eclipse Tahu:
the project never commits third-party code or generated ``*_pb2.py`` files. Pure: no Django."""

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message, message_factory

_F = descriptor_pb2.FieldDescriptorProto
_PACKAGE = "org.eclipse.tahu.protobuf"
_OPTIONAL, _REPEATED = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
_SCALAR = {
    "uint32": _F.TYPE_UINT32,
    "uint64": _F.TYPE_UINT64,
    "float": _F.TYPE_FLOAT,
    "double": _F.TYPE_DOUBLE,
    "bool": _F.TYPE_BOOL,
    "string": _F.TYPE_STRING,
    "bytes": _F.TYPE_BYTES,
}

# (name, number, type, repeated, in the "value" oneof). A type that is not a scalar names a message
# nested in Payload.
_Field = tuple[str, int, str, bool, bool]


def _typed_values(first: int, *, property_sets: bool = False) -> list[_Field]:
    """The value oneof shared by Template.Parameter, DataSet.DataSetValue and PropertyValue."""
    kinds = ["uint32", "uint64", "float", "double", "bool", "string"]
    names = ["int_value", "long_value", "float_value", "double_value", "boolean_value", "string_value"]
    fields: list[_Field] = [
        (n, first + i, k, False, True) for i, (n, k) in enumerate(zip(names, kinds, strict=True))
    ]
    number = first + len(fields)
    if property_sets:
        fields += [
            ("propertyset_value", number, "PropertySet", False, True),
            ("propertysets_value", number + 1, "PropertySetList", False, True),
        ]
        number += 2
    return [*fields, ("extension_value", number, "", False, True)]


_METRIC_FIELDS: list[_Field] = [
    ("name", 1, "string", False, False),
    ("alias", 2, "uint64", False, False),
    ("timestamp", 3, "uint64", False, False),
    ("datatype", 4, "uint32", False, False),
    ("is_historical", 5, "bool", False, False),
    ("is_transient", 6, "bool", False, False),
    ("is_null", 7, "bool", False, False),
    ("metadata", 8, "MetaData", False, False),
    ("properties", 9, "PropertySet", False, False),
    ("int_value", 10, "uint32", False, True),
    ("long_value", 11, "uint64", False, True),
    ("float_value", 12, "float", False, True),
    ("double_value", 13, "double", False, True),
    ("boolean_value", 14, "bool", False, True),
    ("string_value", 15, "string", False, True),
    ("bytes_value", 16, "bytes", False, True),
    ("dataset_value", 17, "DataSet", False, True),
    ("template_value", 18, "Template", False, True),
    ("extension_value", 19, "", False, True),
]

# Message name -> fields. All but Payload nest in Payload; the spec nests Parameter in Template and
# Row and DataSetValue in DataSet, but message names never reach the wire. An "extension_value" field
# with an empty type gets an empty message of its own (the spec's *Extension messages hold only
# protobuf extensions, which nobody defines).
_MESSAGES: dict[str, list[_Field]] = {
    "Payload": [
        ("timestamp", 1, "uint64", False, False),
        ("metrics", 2, "Metric", True, False),
        ("seq", 3, "uint64", False, False),
        ("uuid", 4, "string", False, False),
        ("body", 5, "bytes", False, False),
    ],
    "Template": [
        ("version", 1, "string", False, False),
        ("metrics", 2, "Metric", True, False),
        ("parameters", 3, "Parameter", True, False),
        ("template_ref", 4, "string", False, False),
        ("is_definition", 5, "bool", False, False),
    ],
    "Parameter": [
        ("name", 1, "string", False, False),
        ("type", 2, "uint32", False, False),
        *_typed_values(3),
    ],
    "DataSet": [
        ("num_of_columns", 1, "uint64", False, False),
        ("columns", 2, "string", True, False),
        ("types", 3, "uint32", True, False),
        ("rows", 4, "Row", True, False),
    ],
    "DataSetValue": _typed_values(1),
    "Row": [("elements", 1, "DataSetValue", True, False)],
    "PropertyValue": [
        ("type", 1, "uint32", False, False),
        ("is_null", 2, "bool", False, False),
        *_typed_values(3, property_sets=True),
    ],
    "PropertySet": [("keys", 1, "string", True, False), ("values", 2, "PropertyValue", True, False)],
    "PropertySetList": [("propertyset", 1, "PropertySet", True, False)],
    "MetaData": [
        ("is_multi_part", 1, "bool", False, False),
        ("content_type", 2, "string", False, False),
        ("size", 3, "uint64", False, False),
        ("seq", 4, "uint64", False, False),
        ("file_name", 5, "string", False, False),
        ("file_type", 6, "string", False, False),
        ("md5", 7, "string", False, False),
        ("description", 8, "string", False, False),
    ],
    "Metric": _METRIC_FIELDS,
}


def _add_message(container: Any, name: str, fields: list[_Field]) -> Any:
    msg = container.add(name=name)
    if any(in_oneof for *_, in_oneof in fields):
        msg.oneof_decl.add(name="value")
    for field_name, number, kind, repeated, in_oneof in fields:
        field = msg.field.add(name=field_name, number=number, label=_REPEATED if repeated else _OPTIONAL)
        if kind in _SCALAR:
            field.type = _SCALAR[kind]
        else:
            if not kind:  # an extension holder
                kind = f"{name}{field_name.title().replace('_', '')}"
                msg.nested_type.add(name=kind)
                field.type_name = f".{_PACKAGE}.Payload.{name}.{kind}"
            else:
                field.type_name = f".{_PACKAGE}.Payload.{kind}"
            field.type = _F.TYPE_MESSAGE
        if in_oneof:
            field.oneof_index = 0
    return msg


def _build_payload_class() -> type[message.Message]:
    file = descriptor_pb2.FileDescriptorProto(
        name="openspc/sparkplug_b.proto", package=_PACKAGE, syntax="proto2"
    )
    payload = _add_message(file.message_type, "Payload", _MESSAGES["Payload"])
    for name, fields in _MESSAGES.items():
        if name != "Payload":
            _add_message(payload.nested_type, name, fields)
    # A pool of our own: other Sparkplug libraries register the same names in the default pool.
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.Payload"))


PB_PAYLOAD = _build_payload_class()
