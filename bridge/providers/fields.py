"""What payload mapping shares across providers: JSON parsing, timestamps, typed field readers, SMTP replies."""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bridge.errors import PayloadInvalid

Details = dict[str, Any]  # CanonicalEvent.details: the fields of one event type's schema


# --- Payloads -------------------------------------------------------------------------------------


def parse_json(
    body: bytes | str,
    parse_constant: Callable[[str], Any] | None = None,
    error: type[Exception] = PayloadInvalid,
    what: str = "body",
) -> Any:
    """`body` as JSON. Bytes must be UTF-8 (RFC 8259), though json.loads would guess UTF-16/32.

    Every way the parser can fail is `error` (PayloadInvalid after verification; SignatureInvalid
    where a provider signs inside the body): malformed text, nesting deeper than the interpreter's
    recursion limit, integers longer than its digit limit.
    `parse_constant` is json.loads's hook for NaN and Infinity, for a caller that refuses them.
    """
    try:
        return json.loads(body.decode("utf-8") if isinstance(body, bytes) else body, parse_constant=parse_constant)
    except UnicodeDecodeError as problem:
        raise error(f"{what} is not UTF-8: {problem}") from None
    except json.JSONDecodeError as problem:
        raise error(f"{what} is not JSON: {problem}") from None
    except RecursionError:
        raise error(f"{what} is not usable JSON: nested too deeply") from None
    except ValueError as problem:  # int(): more digits than sys.get_int_max_str_digits() allows
        raise error(f"{what} is not usable JSON: {str(problem)[:120]}") from None


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object."""
    value = parse_json(body)
    if not isinstance(value, dict):
        raise PayloadInvalid(f"body is JSON {type(value).__name__}, expected an object")
    return value


def parse_timestamp(value: object, field: str) -> datetime:
    """ISO 8601 with an offset or `Z`; naive times are rejected rather than guessed."""
    if not isinstance(value, str):
        raise PayloadInvalid(f"{field}: expected an ISO 8601 string, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise PayloadInvalid(f"{field}: not an ISO 8601 timestamp: {value!r}") from None
    if parsed.tzinfo is None:
        raise PayloadInvalid(f"{field}: timestamp has no time zone: {value!r}")
    return parsed


def unix_time(seconds: float, field: str) -> datetime:
    """Unix seconds as an aware UTC time; out of range (or negative) is PayloadInvalid."""
    try:
        if seconds < 0:
            raise ValueError("negative")
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise PayloadInvalid(f"{field}: not a plausible Unix time: {seconds!r}") from None


# A Unix time this large is milliseconds: 1e11 s is the year 5138, 1e11 ms is March 1973
# (Clerk and SendGrid's Single Send send milliseconds, the rest seconds).
MILLISECONDS_FROM = 10**11


def unix_time_or_ms(value: float, field: str) -> datetime:
    """Unix seconds, or milliseconds where the number is that large; out of range is PayloadInvalid."""
    # An integer beyond a float's range is passed undivided (dividing it would raise): unix_time refuses it.
    return unix_time(value / 1000 if MILLISECONDS_FROM <= value < sys.float_info.max else value, field)


def optional_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def stringify_map(value: object) -> dict[str, str]:
    """Provider metadata as map<string,string>: strings kept, anything else as compact JSON."""
    if not isinstance(value, dict):
        return {}
    try:
        return {
            str(key): item if isinstance(item, str) else json.dumps(item, separators=(",", ":"))
            for key, item in value.items()
        }
    except RecursionError:  # parsed just below the nesting limit, but writing it back goes deeper
        raise PayloadInvalid("metadata: nested too deeply to keep") from None


def derived_id(data: bytes) -> str:
    """An event id for events that carry none: the same bytes, as a retry sends, give the same id."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- Field readers: a field of the expected JSON type, else an empty value --------------------------


def object_field(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name)
    return value if isinstance(value, dict) else {}


def as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def string_field(data: dict[str, Any], name: str) -> str | None:
    """A non-empty string; anything else (a number too) is None."""
    return optional_str(data.get(name))


def text_field(data: dict[str, Any], name: str) -> str | None:
    """A non-empty string, or an integer as its digits: for payloads that send ids and codes as either."""
    value = data.get(name)
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) and value != "" else None


def flag_field(data: dict[str, Any], name: str) -> bool | None:
    value = data.get(name)
    return value if isinstance(value, bool) else None


def number_field(data: dict[str, Any], name: str) -> float | None:
    """A number as a float; one too large for a float (a 400-digit integer) is None, like any other misfit."""
    value = data.get(name)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        return float(value)
    except OverflowError:
        return None


def no_details(*_: object) -> Details:
    """The details of an event type whose schema has no fields of its own; it takes any mapper's arguments."""
    return {}


def smtp_fields(reply: str | None, pattern: re.Pattern[str], enhanced: str | None = None) -> Details:
    """The smtp_* details of a receiving server's reply ("550 5.1.1 No such user").

    `pattern` is how the provider quotes replies: group 1 the reply code, group 2 the enhanced status,
    if any. A separately stated `enhanced` status wins over the one in the text.
    """
    match = pattern.match(reply or "")
    return {
        "smtp_status_code": int(match.group(1)) if match else None,
        "smtp_enhanced_status_code": enhanced or (match.group(2) if match else None),
        "smtp_response": reply,
    }
