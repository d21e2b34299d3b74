"""A field-level diff of two Avro record schemas, and which changes break a compatibility level.

The registry only answers "compatible or not" (Apicurio's ccompat API gives no reasons, even with
`?verbose=true`), so `bridge schemas check` explains its verdict with this diff. The rules are
Avro's schema resolution: under BACKWARD the new schema reads data written with the old one, so a
field added without a default breaks it and a removed one does not; FORWARD is the reverse.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

BACKWARD, FORWARD = "backward", "forward"
# What each registry level asks of the new schema against the old (the *_TRANSITIVE levels ask the same of
# every earlier version; the diff is against the latest, and the registry's verdict covers the rest).
DIRECTIONS = {
    "NONE": frozenset[str](),
    "BACKWARD": frozenset({BACKWARD}),
    "BACKWARD_TRANSITIVE": frozenset({BACKWARD}),
    "FORWARD": frozenset({FORWARD}),
    "FORWARD_TRANSITIVE": frozenset({FORWARD}),
    "FULL": frozenset({BACKWARD, FORWARD}),
    "FULL_TRANSITIVE": frozenset({BACKWARD, FORWARD}),
}
# Avro's promotions: a writer's type (key) that a reader of each listed type can read.
PROMOTIONS = {
    "int": {"long", "float", "double"},
    "long": {"float", "double"},
    "float": {"double"},
    "string": {"bytes"},
    "bytes": {"string"},
}
NAMED = ("record", "enum", "fixed")


@dataclass(frozen=True)
class Change:
    """One difference. `breaks` names the directions (BACKWARD, FORWARD) it is incompatible in."""

    field: str
    text: str
    breaks: frozenset[str] = frozenset()

    def breaks_level(self, level: str) -> bool:
        return bool(self.breaks & DIRECTIONS.get(level.upper(), frozenset({BACKWARD})))


def diff(old: Any, new: Any) -> list[Change]:
    """Changes from `old` (the registered schema) to `new` (the local one), both parsed JSON."""
    return _records(_Names(old), _Names(new), old, new, "")


class _Names:
    """The named types of one schema, so a reference by name reads as the type it names."""

    def __init__(self, schema: Any) -> None:
        self.types: dict[str, Any] = {}
        self._collect(schema, "")

    def _collect(self, kind: Any, namespace: str) -> None:
        if isinstance(kind, list):
            for branch in kind:
                self._collect(branch, namespace)
        elif isinstance(kind, dict):
            if kind.get("type") in NAMED:
                namespace = kind.get("namespace", namespace)
                self.types[kind["name"]] = self.types[_full(kind["name"], namespace)] = kind
            for field in kind.get("fields", []):
                self._collect(field["type"], namespace)
            for key in ("items", "values"):
                if key in kind:
                    self._collect(kind[key], namespace)

    def resolve(self, kind: Any) -> Any:
        return self.types.get(kind, kind) if isinstance(kind, str) else kind


def _full(name: str, namespace: str) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _records(old_names: _Names, new_names: _Names, old: Any, new: Any, path: str) -> list[Change]:
    before = {field["name"]: field for field in old.get("fields", [])}
    after = {field["name"]: field for field in new.get("fields", [])}
    changes = [_removed(path + name, before[name]) for name in before if name not in after]
    changes += [_added(path + name, after[name]) for name in after if name not in before]
    for name in (name for name in after if name in before):
        changes += _field(old_names, new_names, before[name], after[name], path + name)
    return changes


def _added(name: str, field: Any) -> Change:
    if "default" in field:
        return Change(name, f"field `{name}` added with default {_json(field['default'])}")
    # Old records have no value for it: a new reader (BACKWARD) cannot fill it in.
    return Change(name, f"field `{name}` added without a default", frozenset({BACKWARD}))


def _removed(name: str, field: Any) -> Change:
    if "default" in field:
        return Change(name, f"field `{name}` removed (it had default {_json(field['default'])})")
    # New records lack it: an old reader (FORWARD) that needs it has no default to use.
    return Change(name, f"field `{name}` removed without a default", frozenset({FORWARD}))


def _field(old_names: _Names, new_names: _Names, old: Any, new: Any, name: str) -> list[Change]:
    changes = []
    old_type, new_type = old_names.resolve(old["type"]), new_names.resolve(new["type"])
    if _is_record(old_type) and _is_record(new_type):
        changes += _records(old_names, new_names, old_type, new_type, name + ".")
    elif _shape(old_type) != _shape(new_type):
        breaks = set()
        if not _readable(old_names, new_names, old_type, new_type):
            breaks.add(BACKWARD)
        if not _readable(new_names, old_names, new_type, old_type):
            breaks.add(FORWARD)
        changes.append(
            Change(
                name,
                f"field `{name}` type changed from {_type_text(old['type'])} to {_type_text(new['type'])}",
                frozenset(breaks),
            )
        )
    changes += _enum(old_type, new_type, name)
    if ("default" in old) != ("default" in new):
        # A default only matters to a reader of records that lack the field; the diff says so, nothing breaks.
        said = f"added ({_json(new['default'])})" if "default" in new else "removed"
        changes.append(Change(name, f"field `{name}` default {said}"))
    elif "default" in old and old["default"] != new["default"]:
        changes.append(
            Change(name, f"field `{name}` default changed from {_json(old['default'])} to {_json(new['default'])}")
        )
    return changes


def _enum(old: Any, new: Any, name: str) -> list[Change]:
    if not (_kind(old) == _kind(new) == "enum"):
        return []
    removed = [symbol for symbol in old["symbols"] if symbol not in new["symbols"]]
    added = [symbol for symbol in new["symbols"] if symbol not in old["symbols"]]
    changes = []
    if removed:
        # Old data may hold a symbol the new reader lacks; only the reader's enum default saves it.
        breaks = frozenset() if "default" in new else frozenset({BACKWARD})
        changes.append(Change(name, f"field `{name}` enum symbols removed: {', '.join(removed)}", breaks))
    if added:
        breaks = frozenset() if "default" in old else frozenset({FORWARD})
        changes.append(Change(name, f"field `{name}` enum symbols added: {', '.join(added)}", breaks))
    return changes


def _readable(writer_names: _Names, reader_names: _Names, writer: Any, reader: Any) -> bool:
    """Whether data written as `writer` can be read as `reader` (Avro resolution, named types by name)."""
    writer, reader = writer_names.resolve(writer), reader_names.resolve(reader)
    if isinstance(writer, list):
        return all(_readable(writer_names, reader_names, branch, reader) for branch in writer)
    if isinstance(reader, list):
        return any(_readable(writer_names, reader_names, writer, branch) for branch in reader)
    writer_kind, reader_kind = _kind(writer), _kind(reader)
    if writer_kind in NAMED or reader_kind in NAMED:
        if writer_kind != reader_kind or writer["name"].rsplit(".", 1)[-1] != reader["name"].rsplit(".", 1)[-1]:
            return False
        return writer_kind != "fixed" or writer["size"] == reader["size"]  # records and enums: their own diff
    if writer_kind == reader_kind == "array":
        return _readable(writer_names, reader_names, writer["items"], reader["items"])
    if writer_kind == reader_kind == "map":
        return _readable(writer_names, reader_names, writer["values"], reader["values"])
    return writer_kind == reader_kind or reader_kind in PROMOTIONS.get(writer_kind, set())


def _kind(kind: Any) -> str:
    return str(kind.get("type") if isinstance(kind, dict) else kind)


def _is_record(kind: Any) -> bool:
    return _kind(kind) == "record"


def _shape(kind: Any) -> Any:
    """What a type is, less its documentation: docs and logical types' display do not change what is read."""
    if isinstance(kind, list):
        return [_shape(branch) for branch in kind]
    if isinstance(kind, dict):
        if _kind(kind) in NAMED:
            return (_kind(kind), kind["name"].rsplit(".", 1)[-1])  # enums and records are diffed by content
        return {key: _shape(value) for key, value in kind.items() if key not in ("doc", "default")}
    return kind


def _type_text(kind: Any) -> str:
    return _json(_shape_text(kind))


def _shape_text(kind: Any) -> Any:
    if isinstance(kind, list):
        return [_shape_text(branch) for branch in kind]
    if isinstance(kind, dict):
        if _kind(kind) in NAMED:
            return kind["name"]
        return {key: _shape_text(value) for key, value in kind.items() if key not in ("doc", "default")}
    return kind


def _json(value: Any) -> str:
    return json.dumps(value, separators=(", ", ": "))
