"""schema_diff: the field-level changes `bridge schemas check` prints, and which compatibility levels they break."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from bridge.avro import load_schemas
from bridge.schema_diff import BACKWARD, FORWARD, diff

BASE: dict[str, Any] = json.loads(load_schemas()["message.delivered"].text)


def changed(edit: dict[str, Any]) -> dict[str, Any]:
    """BASE with fields replaced (a dict value), removed (None) or appended (names not in BASE)."""
    schema = copy.deepcopy(BASE)
    fields = {field["name"]: field for field in schema["fields"]}
    for name, field in edit.items():
        if field is None:
            del fields[name]
        else:
            fields[name] = {"name": name, **field}
    schema["fields"] = list(fields.values())
    return schema


def test_the_same_schema_has_no_changes() -> None:
    assert diff(BASE, copy.deepcopy(BASE)) == []


@pytest.mark.parametrize(
    ("edit", "text", "breaks"),
    [
        ({"x": {"type": "string"}}, "field `x` added without a default", {BACKWARD}),
        ({"x": {"type": ["null", "string"], "default": None}}, "field `x` added with default null", set()),
        ({"recipient": None}, "field `recipient` removed (it had default null)", set()),
        ({"raw": None}, "field `raw` removed without a default", {FORWARD}),
        (
            {"attempt": {"type": "string"}},
            'field `attempt` type changed from ["null", "int"] to "string"',
            {BACKWARD, FORWARD},
        ),
        (
            {"attempt": {"type": ["null", "long"], "default": None}},
            'field `attempt` type changed from ["null", "int"] to ["null", "long"]',
            {FORWARD},  # int promotes to long: new readers read old data; old readers cannot read a long
        ),
        (
            {"provider": {"type": ["null", "string"], "default": None}},
            'field `provider` type changed from "string" to ["null", "string"]',
            {FORWARD},
        ),
    ],
)
def test_each_change_names_its_field_and_what_it_breaks(edit: dict[str, Any], text: str, breaks: set[str]) -> None:
    changes = diff(BASE, changed(edit))
    assert changes[0].text == text
    assert changes[0].breaks == breaks
    assert changes[0].breaks_level("BACKWARD") == (BACKWARD in breaks)
    assert changes[0].breaks_level("FULL_TRANSITIVE") == bool(breaks)
    assert not changes[0].breaks_level("NONE")


def test_defaults_added_and_removed_are_shown_and_break_nothing() -> None:
    changes = diff(BASE, changed({"provider": {"type": "string", "default": "unknown"}}))
    assert [(change.text, change.breaks) for change in changes] == [
        ('field `provider` default added ("unknown")', frozenset())
    ]
    assert [change.text for change in diff(changed({"provider": {"type": "string", "default": "x"}}), BASE)] == [
        "field `provider` default removed"
    ]


def test_enum_symbols_removed_break_backward_unless_the_reader_has_a_default() -> None:
    fewer = changed({"channel": {"type": {"type": "enum", "name": "Channel", "symbols": ["email", "sms"]}}})
    without_default = diff(BASE, fewer)
    assert [change.text for change in without_default] == [
        "field `channel` enum symbols removed: whatsapp",
        "field `channel` default removed",
    ]
    assert without_default[0].breaks == {BACKWARD}
    assert diff(fewer, BASE)[0].text == "field `channel` enum symbols added: whatsapp"
    assert diff(fewer, BASE)[0].breaks == {FORWARD}
    with_default = copy.deepcopy(fewer)
    with_default["fields"][4]["type"]["default"] = "email"
    assert diff(BASE, with_default)[0].breaks == frozenset()


def test_nested_records_are_diffed_field_by_field() -> None:
    def nested(*fields: dict[str, Any]) -> dict[str, Any]:
        return changed({"bounce": {"type": {"type": "record", "name": "Bounce", "fields": list(fields)}}})

    old = nested({"name": "code", "type": "int"})
    new = nested({"name": "code", "type": "int"}, {"name": "kind", "type": "string"})
    assert [(change.field, change.text) for change in diff(old, new)] == [
        ("bounce.kind", "field `bounce.kind` added without a default")
    ]
