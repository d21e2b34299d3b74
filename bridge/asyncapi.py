"""The AsyncAPI 3.0 document of the bridge's topics: one channel per event type, plus unmapped and dead-letter.

Built from the same names the bridge writes with (bridge/records.py, bridge/events.py), so the
document cannot drift from the records. `bridge schemas export` writes it as asyncapi.yaml.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bridge import records
from bridge.avro import EventSchema, subject_for
from bridge.dlq import REPLAYED_FROM
from bridge.events import DEAD_LETTER, UNMAPPED, topic_for

ASYNCAPI_VERSION = "3.0.0"
AVRO_FORMAT = "application/vnd.apache.avro+json;version=1.9.0"
KAFKA_BINDING = "0.5.0"
# A string header; the bridge writes every header as UTF-8 text.
_TEXT: dict[str, Any] = {"type": "string"}
EVENT_HEADERS: dict[str, dict[str, Any]] = {
    records.EVENT_ID: {**_TEXT, "description": "The event's id, the same on every redelivery: deduplicate on it."},
    records.EVENT_TYPE: {**_TEXT, "description": "The canonical event type; equals the topic suffix."},
    records.PROVIDER: {**_TEXT, "description": "The provider that sent it (lettermint, postmark, ses, ...)."},
    records.SOURCE: {**_TEXT, "description": "The configured source (webhook route) it came through."},
    records.ATTEMPT: {
        **_TEXT,
        "description": "The provider's delivery attempt as a decimal, or empty where it says none.",
    },
    records.RECEIVED_AT: {**_TEXT, "format": "date-time", "description": "When the bridge received it (ISO 8601, ms)."},
}
OPTIONAL_EVENT_HEADERS = {
    REPLAYED_FROM: {**_TEXT, "description": "Only on records from `bridge dlq replay`: <topic>:<partition>:<offset>."},
}
DEAD_LETTER_HEADERS: dict[str, dict[str, Any]] = {
    records.DEAD_LETTER_REASON: {**_TEXT, "description": "Why the delivery could not be published as events."},
    records.PROVIDER: EVENT_HEADERS[records.PROVIDER],
    records.SOURCE: EVENT_HEADERS[records.SOURCE],
    records.RECEIVED_AT: EVENT_HEADERS[records.RECEIVED_AT],
}


@dataclass(frozen=True)
class Topics:
    """What the document describes: the bridge's topics and where they live."""

    prefix: str
    schemas: dict[str, EventSchema]
    version: str
    bootstrap_servers: str
    secure: bool = False
    # Each topic's max.message.bytes as `topics apply` creates it (bridge/topics.py topic_specs), by topic name.
    max_message_bytes: Mapping[str, int] = field(default_factory=dict)


def document(topics: Topics) -> dict[str, Any]:
    channels, operations = {}, {}
    for name, channel in [*_event_channels(topics), (DEAD_LETTER, _dead_letter_channel(topics))]:
        channels[name] = channel
        operations[f"send-{name}"] = {
            "action": "send",
            "title": f"Publish {name}",
            "channel": {"$ref": f"#/channels/{name}"},
            "messages": [{"$ref": f"#/channels/{name}/messages/{message}"} for message in channel["messages"]],
        }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": f"webhook-kafka-bridge topics ({topics.prefix})",
            "version": topics.version,
            "description": "What the bridge publishes: one topic per canonical event type, Avro values in the "
            "Confluent wire format (subject <topic>-value), keyed by message id; `unmapped` for events with no "
            "canonical type; `dead-letter` for authentic deliveries that could not be used, raw.",
        },
        "servers": _servers(topics),
        "defaultContentType": "application/octet-stream",
        "channels": channels,
        "operations": operations,
    }


def _servers(topics: Topics) -> dict[str, Any]:
    hosts = [host.strip() for host in topics.bootstrap_servers.split(",") if host.strip()]
    protocol = "kafka-secure" if topics.secure else "kafka"
    return {f"broker-{index}": {"host": host, "protocol": protocol} for index, host in enumerate(hosts, 1)}


def _event_channels(topics: Topics) -> list[tuple[str, dict[str, Any]]]:
    return [(event_type, _event_channel(topics, event_type, schema)) for event_type, schema in topics.schemas.items()]


def _event_channel(topics: Topics, event_type: str, schema: EventSchema) -> dict[str, Any]:
    topic = topic_for(topics.prefix, event_type)
    parsed = json.loads(schema.text)
    about = "events with no canonical type, raw" if event_type == UNMAPPED else f"{event_type} events"
    message = {
        "name": parsed.get("name", event_type),
        "title": event_type,
        "summary": parsed.get("doc", about),
        "contentType": "application/vnd.apache.avro",
        "headers": _headers(EVENT_HEADERS, OPTIONAL_EVENT_HEADERS),
        "payload": {"schemaFormat": AVRO_FORMAT, "schema": parsed},
        "bindings": {
            "kafka": {
                "key": {
                    "type": "string",
                    "description": "The message id (UTF-8); where the event is about no message, the id of what it "
                    "is about (suppressed address, session, verification, webhook), else the event id.",
                },
                "schemaIdLocation": "payload",
                "schemaIdPayloadEncoding": "confluent",  # magic byte 0, then the 4-byte big-endian schema id
                "schemaLookupStrategy": "TopicNameStrategy",
                "bindingVersion": KAFKA_BINDING,
            }
        },
        "x-schema-registry-subject": subject_for(topic),
    }
    return _channel(topics, topic, f"The {about}.", event_type, message)


def _dead_letter_channel(topics: Topics) -> dict[str, Any]:
    message = {
        "name": "DeadLetter",
        "title": DEAD_LETTER,
        "summary": "An authentic delivery that could not be published as events: the request body, whole.",
        "description": "Not Avro: the value is the raw HTTP request body as the provider sent it. Request headers "
        f"are kept as `{records.HTTP_PREFIX}<lower-case name>` headers (credentials left out), so "
        "`bridge dlq replay` can run it through the pipeline again.",
        "contentType": "application/octet-stream",
        "headers": _headers(DEAD_LETTER_HEADERS, {}, pattern=f"^{records.HTTP_PREFIX.replace('.', '[.]')}"),
        "payload": {"type": "string", "format": "binary", "description": "The raw request body (any bytes)."},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "The source (webhook route) name."},
                "bindingVersion": KAFKA_BINDING,
            }
        },
    }
    return _channel(topics, topic_for(topics.prefix, DEAD_LETTER), "Dead letters.", "DeadLetter", message)


def _channel(topics: Topics, topic: str, description: str, message_id: str, message: dict[str, Any]) -> dict[str, Any]:
    binding: dict[str, Any] = {"topic": topic, "bindingVersion": KAFKA_BINDING}
    if topic in topics.max_message_bytes:
        binding["topicConfiguration"] = {"max.message.bytes": topics.max_message_bytes[topic]}
    return {
        "address": topic,
        "description": description,
        "messages": {message_id: message},
        "bindings": {"kafka": binding},
    }


def _headers(
    required: dict[str, dict[str, Any]], optional: dict[str, dict[str, Any]], pattern: str | None = None
) -> dict[str, Any]:
    headers: dict[str, Any] = {
        "type": "object",
        "required": list(required),
        "properties": {**required, **optional},
        "additionalProperties": False,
    }
    if pattern is not None:
        headers["patternProperties"] = {pattern: {**_TEXT, "description": "A request header, as received."}}
    return headers
