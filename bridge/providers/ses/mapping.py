"""The SES message inside a verified SNS Notification, as canonical events: one per recipient it names."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from email.utils import getaddresses, parseaddr
from typing import Any

from bridge.errors import PayloadInvalid
from bridge.events import UNMAPPED, CanonicalEvent, Delivery
from bridge.providers.fields import (
    Details,
    as_list,
    no_details,
    object_field,
    parse_json,
    parse_timestamp,
    smtp_fields,
    string_field,
)
from bridge.providers.ses.sns import parse_envelope


def events(delivery: Delivery) -> list[CanonicalEvent]:
    """The events of a verified Notification; PayloadInvalid where its Message is not a usable SES event."""
    envelope = parse_envelope(delivery.body, PayloadInvalid)
    text, sns_id = envelope.get("Message"), envelope.get("MessageId")
    if not isinstance(text, str) or not isinstance(sns_id, str) or not sns_id:
        raise PayloadInvalid("Message and MessageId must be strings")
    ses = _ses_message(text)
    name = _event_name(ses)
    mail, body = object_field(ses, "mail"), object_field(ses, EVENT_OBJECTS.get(name, ""))
    event_type, message_id = _event_type(name, body), string_field(mail, "messageId")
    details = DETAILS.get(event_type, no_details)
    common: dict[str, Any] = {
        "event_type": event_type,
        "provider_event": name,
        "occurred_at": _occurred_at(body, mail, envelope),
        "raw": text,  # the SES JSON, unchanged, shared by the events of one notification
        "message_id": message_id,
        "tags": _tags(mail.get("tags")),
    }
    return [
        CanonicalEvent.of(
            delivery,
            event_id=_event_id(sns_id, name, recipient),
            key=message_id or _event_id(sns_id, name, recipient),
            recipient=recipient,
            details=details(body, entry, mail),
            **common,
        )
        for recipient, entry in _recipients(name, body, mail)
    ]


BOUNCE, COMPLAINT, DELIVERY, DELIVERY_DELAY = "Bounce", "Complaint", "Delivery", "DeliveryDelay"
SUBSCRIPTION = "Subscription"
# Each event's own object; identity notifications (`notificationType`) use the same names.
EVENT_OBJECTS = {
    BOUNCE: "bounce",
    COMPLAINT: "complaint",
    DELIVERY: "delivery",
    "Send": "send",
    "Reject": "reject",
    "Open": "open",
    "Click": "click",
    "Rendering Failure": "failure",
    DELIVERY_DELAY: "deliveryDelay",
    SUBSCRIPTION: "subscription",
}
# Events about some of the message's recipients: one canonical event each.
RECIPIENT_LISTS = {
    BOUNCE: "bouncedRecipients",
    COMPLAINT: "complainedRecipients",
    DELIVERY: "recipients",
    DELIVERY_DELAY: "delayedRecipients",
}
SES_EVENT_TYPES = {
    "Send": "message.created",
    DELIVERY: "message.delivered",
    DELIVERY_DELAY: "message.deferred",
    COMPLAINT: "message.spam_complaint",
    "Reject": "message.failed",
    "Rendering Failure": "message.failed",
    "Open": "message.opened",
    "Click": "message.clicked",
}
# Undetermined: SES could not tell why. Soft, so nobody drops an address on a guess; bounce_class says which.
BOUNCE_TYPES = {
    "Permanent": "message.hard_bounced",
    "Transient": "message.soft_bounced",
    "Undetermined": "message.soft_bounced",
}
# "Not sent: the recipient is on a suppression list" is message.suppressed, whatever SES files it under.
SUPPRESSED_SUBTYPES = frozenset({"Suppressed", "OnAccountSuppressionList"})
OPT_OUT = "OptOut"
# `250 2.6.0 Message received` / `smtp; 550 5.1.1 user unknown`: code and enhanced code, where given.
SMTP_REPLY = re.compile(r"\s*(?:smtp;\s*)?([2-5][0-9]{2})(?:[ -]+([2-5]\.[0-9]{1,3}\.[0-9]{1,3}))?", re.IGNORECASE)


def _ses_message(text: str) -> dict[str, Any]:
    value = parse_json(text, what="Message (SES JSON)")
    if not isinstance(value, dict):
        raise PayloadInvalid(f"Message is JSON {type(value).__name__}, expected an SES event object")
    return value


def _event_name(ses: dict[str, Any]) -> str:
    # Configuration-set event publishing says eventType; identity notifications say notificationType.
    name = ses.get("eventType", ses.get("notificationType"))
    if not isinstance(name, str) or not name:
        raise PayloadInvalid("Message has no eventType or notificationType")
    return name


def _event_type(name: str, body: dict[str, Any]) -> str:
    # string_field: a sub-type that is a list or an object is no SES sub-type (and could not be looked up).
    if name == BOUNCE:
        if string_field(body, "bounceSubType") in SUPPRESSED_SUBTYPES:
            return "message.suppressed"
        return BOUNCE_TYPES.get(str(body.get("bounceType")), UNMAPPED)
    if name == COMPLAINT and string_field(body, "complaintSubType") in SUPPRESSED_SUBTYPES:
        return "message.suppressed"
    if name == SUBSCRIPTION:
        return "message.unsubscribed" if _opted_out(body) else UNMAPPED
    return SES_EVENT_TYPES.get(name, UNMAPPED)


def _opted_out(body: dict[str, Any]) -> bool:
    """Unsubscribed from everything, or from a topic not opted out of before (else an opt-in: unmapped)."""
    new, old = object_field(body, "newTopicPreferences"), object_field(body, "oldTopicPreferences")
    if new.get("unsubscribeAll") is True:
        return True
    # Topics are named by strings; an entry naming its topic otherwise (a list, an object) names none.
    before = {
        string_field(item, "topicName"): item.get("subscriptionStatus")
        for item in _objects(old.get("topicSubscriptionStatus"))
    }
    return any(
        item.get("subscriptionStatus") == OPT_OUT and before.get(string_field(item, "topicName")) != OPT_OUT
        for item in _objects(new.get("topicSubscriptionStatus"))
    )


def _recipients(name: str, body: dict[str, Any], mail: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    """(recipient, its entry) per recipient the event names; one recipient-less entry where it names none.

    Message-level events (Send, Open, ...) name no recipient: the message's sole destination stands in.
    """
    if name not in RECIPIENT_LISTS:
        destination = [item for item in as_list(mail.get("destination")) if isinstance(item, str)]
        return [(destination[0] if len(destination) == 1 else None, {})]
    found: dict[str, dict[str, Any]] = {}
    for item in as_list(body.get(RECIPIENT_LISTS[name])):
        entry = item if isinstance(item, dict) else {"emailAddress": item}
        address = string_field(entry, "emailAddress")
        if address is not None:
            found.setdefault(address, entry)  # a repeated address would repeat the event_id
    return list(found.items()) or [(None, {})]


def _event_id(sns_id: str, name: str, recipient: str | None) -> str:
    """SNS's MessageId (the same on every retry), plus the recipient for events about some recipients."""
    return f"{sns_id}:{recipient}" if name in RECIPIENT_LISTS and recipient else sns_id


def _occurred_at(body: dict[str, Any], mail: dict[str, Any], envelope: dict[str, Any]) -> datetime:
    """The event's own time (bounce.timestamp, ...), else when the mail was sent, else SNS's publish time."""
    for where, value in (("event timestamp", body.get("timestamp")), ("mail.timestamp", mail.get("timestamp"))):
        if value is not None:
            return parse_timestamp(value, where)
    return parse_timestamp(envelope.get("Timestamp"), "SNS Timestamp")


def _tags(value: object) -> tuple[str, ...]:
    """SES message tags {name: [values]} as `name=value`, one per value, in the order SES gives them."""
    tags = value if isinstance(value, dict) else {}
    return tuple(
        f"{name}={item}" for name, items in tags.items() for item in (items if isinstance(items, list) else [items])
    )


def _objects(value: object) -> list[dict[str, Any]]:
    return [item for item in as_list(value) if isinstance(item, dict)]


# --- Details: each event type's schema fields ----------------------------------------------------------


def _delivered(body: dict[str, Any], entry: dict[str, Any], mail: dict[str, Any]) -> Details:
    return {"reason": None, **smtp_fields(string_field(body, "smtpResponse"), SMTP_REPLY), "session_id": None}


def _deferred(body: dict[str, Any], entry: dict[str, Any], mail: dict[str, Any]) -> Details:
    smtp = smtp_fields(string_field(entry, "diagnosticCode"), SMTP_REPLY, string_field(entry, "status"))
    return {"reason": string_field(body, "delayType"), **smtp, "bounce_class": None}


def _bounced(body: dict[str, Any], entry: dict[str, Any], mail: dict[str, Any]) -> Details:
    kind, subtype = string_field(body, "bounceType"), string_field(body, "bounceSubType")
    return {
        "reason": subtype,
        **smtp_fields(string_field(entry, "diagnosticCode"), SMTP_REPLY, string_field(entry, "status")),
        "bounce_class": f"{kind}/{subtype}" if kind or subtype else None,
    }


def _suppressed(body: dict[str, Any], entry: dict[str, Any], mail: dict[str, Any]) -> Details:
    return {"reason": string_field(body, "bounceSubType") or string_field(body, "complaintSubType")}


def _failed(body: dict[str, Any], entry: dict[str, Any], mail: dict[str, Any]) -> Details:
    reason = string_field(body, "reason") or string_field(body, "errorMessage")  # Reject / Rendering Failure
    return {"reason": reason, **smtp_fields(None, SMTP_REPLY), "error_code": None}


def _headers(mail: dict[str, Any]) -> dict[str, Any]:
    return object_field(mail, "commonHeaders")


def _addresses(value: object) -> list[str]:
    return [
        address for _, address in getaddresses([item for item in as_list(value) if isinstance(item, str)]) if address
    ]


def _created(body: dict[str, Any], entry: dict[str, Any], mail: dict[str, Any]) -> Details:
    headers = _headers(mail)
    senders = [item for item in as_list(headers.get("from")) if isinstance(item, str)] or [str(mail.get("source", ""))]
    name, address = parseaddr(senders[0])
    return {
        "subject": string_field(headers, "subject"),
        "from_address": address or None,
        "from_name": name or None,
        "to": _addresses(headers.get("to"))
        or [item for item in as_list(mail.get("destination")) if isinstance(item, str)],
        "cc": _addresses(headers.get("cc")),
        "bcc": _addresses(headers.get("bcc")),
        "reply_to": next(iter(_addresses(headers.get("replyTo"))), None),
    }


def _opened(body: dict[str, Any], entry: dict[str, Any], mail: dict[str, Any]) -> Details:
    return {
        "subject": string_field(_headers(mail), "subject"),
        "first": None,
        "user_agent": string_field(body, "userAgent"),
        "client_name": None,
        "client_type": None,
        "device_type": None,
        "is_bot": None,
        "ip": string_field(body, "ipAddress"),
    }


def _clicked(body: dict[str, Any], entry: dict[str, Any], mail: dict[str, Any]) -> Details:
    return {**_opened(body, entry, mail), "url": string_field(body, "link"), "link_index": None}


DETAILS: dict[str, Callable[[dict[str, Any], dict[str, Any], dict[str, Any]], Details]] = {
    "message.created": _created,
    "message.delivered": _delivered,
    "message.deferred": _deferred,
    "message.hard_bounced": _bounced,
    "message.soft_bounced": _bounced,
    "message.suppressed": _suppressed,
    "message.spam_complaint": lambda body, entry, mail: {"feedback_type": string_field(body, "complaintFeedbackType")},
    "message.failed": _failed,
    "message.opened": _opened,
    "message.clicked": _clicked,
}
