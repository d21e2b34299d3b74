"""`bridge send-test` for SES: example SNS Notifications, signed in the body as SNS signs them (`SesSender`)."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from bridge.providers.ses.mapping import BOUNCE, COMPLAINT, DELIVERY, DELIVERY_DELAY, EVENT_OBJECTS, SUBSCRIPTION
from bridge.providers.ses.sns import NOTIFICATION, SIGNATURE_HASHES, parse_envelope, string_to_sign
from bridge.settings import SourceSettings

# The URL under which the test certificate is pinned, and the example topic.
SEND_TEST_CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-bridge-send-test.pem"
EXAMPLE_TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:ses-events"
PRIVATE_KEY_WANTED = "secrets: the ses provider takes PEM RSA private keys (for bridge send-test)"


class SesSender:
    """An example of each SES event, signed with the source's first secret (a PEM RSA private key)."""

    def example(self, event_type: str, now: datetime) -> bytes:
        """An SNS Notification around an SES event-publishing record of `event_type`, unsigned."""
        if event_type not in EXAMPLE_EVENTS:
            raise ValueError(f"SES sends no {event_type}; examples exist for {', '.join(sorted(EXAMPLE_EVENTS))}")
        stamp = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        envelope = {
            "Type": NOTIFICATION,
            "MessageId": str(uuid.uuid4()),
            "TopicArn": EXAMPLE_TOPIC_ARN,
            "Subject": "Amazon SES Email Event Notification",
            "Message": json.dumps(_example_message(event_type, stamp), separators=(",", ":")),
            "Timestamp": stamp,
            "SignatureVersion": "2",
            "SigningCertURL": SEND_TEST_CERT_URL,
            "UnsubscribeURL": f"https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={EXAMPLE_TOPIC_ARN}:send-test",
        }
        return json.dumps(envelope, ensure_ascii=False, indent=2).encode()

    def sign(self, body: bytes, source: SourceSettings, now: float) -> tuple[bytes, dict[str, str]]:
        # SNS's own Timestamp is in the envelope already; `now` adds nothing to an SNS signature.
        secrets = source.secret_values()
        if not secrets:
            raise ValueError(
                "secrets: SNS signs with AWS's private key; give the source a PEM RSA private key as its first "
                "secret and pin its certificate under SigningCertURL in options.certificates"
            )
        signed = sign_body(body, secrets[0])
        return signed, sns_headers(signed)


def sign_body(body: bytes, secret: str, version: str = "2") -> bytes:
    """`body` signed as SNS would, with `secret` a PEM RSA private key (SignatureVersion 1 or 2).

    SigningCertURL is kept where the envelope has one, else SEND_TEST_CERT_URL: pin the key's
    certificate under that URL in `options.certificates`.
    """
    envelope = parse_envelope(body, ValueError)
    envelope.pop("Signature", None)
    envelope["SignatureVersion"] = version
    envelope.setdefault("SigningCertURL", SEND_TEST_CERT_URL)
    signed = string_to_sign(envelope, str(envelope.get("Type")))
    signature = private_key(secret).sign(signed, padding.PKCS1v15(), SIGNATURE_HASHES[version]())
    envelope["Signature"] = base64.b64encode(signature).decode()
    return json.dumps(envelope, ensure_ascii=False, indent=2).encode()


def sns_headers(body: bytes) -> dict[str, str]:
    """The HTTP headers SNS sends with a signed envelope; the signature itself is in the body."""
    envelope = parse_envelope(body, ValueError)
    if "Signature" not in envelope:
        raise ValueError(
            "SNS signs inside the body, not in a header: sign the example with sign_body(body, secret) "
            "first (secret: a PEM RSA private key whose certificate is pinned under SigningCertURL)"
        )
    return {
        "x-amz-sns-message-type": str(envelope.get("Type")),
        "x-amz-sns-message-id": str(envelope.get("MessageId")),
        "x-amz-sns-topic-arn": str(envelope.get("TopicArn")),
        "Content-Type": "text/plain; charset=UTF-8",
    }


def private_key(secret: str) -> rsa.RSAPrivateKey:
    """A source secret as the RSA key it must be; ValueError naming `secrets` otherwise."""
    try:
        key = serialization.load_pem_private_key(secret.encode(), password=None)
    except (ValueError, TypeError):
        raise ValueError(PRIVATE_KEY_WANTED) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(PRIVATE_KEY_WANTED)
    return key


# --- Examples for `bridge send-test` -------------------------------------------------------------------

EXAMPLE_RECIPIENT = "recipient@example.com"
# Objects that carry no timestamp of their own (the docs' Send and Reject records).
UNSTAMPED_EVENTS = frozenset({"Send", "Reject"})
EXAMPLE_EVENTS: dict[str, tuple[str, dict[str, Any]]] = {
    "message.created": ("Send", {}),
    "message.delivered": (
        DELIVERY,
        {"recipients": [EXAMPLE_RECIPIENT], "smtpResponse": "250 2.6.0 Message received", "processingTimeMillis": 812},
    ),
    "message.deferred": (
        DELIVERY_DELAY,
        {
            "delayType": "MailboxFull",
            "delayedRecipients": [
                {"emailAddress": EXAMPLE_RECIPIENT, "status": "4.2.2", "diagnosticCode": "smtp; 452 4.2.2 Mailbox full"}
            ],
        },
    ),
    "message.hard_bounced": (
        BOUNCE,
        {
            "bounceType": "Permanent",
            "bounceSubType": "NoEmail",
            "bouncedRecipients": [
                {"emailAddress": EXAMPLE_RECIPIENT, "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1 user unknown"}
            ],
        },
    ),
    "message.soft_bounced": (
        BOUNCE,
        {
            "bounceType": "Transient",
            "bounceSubType": "MailboxFull",
            "bouncedRecipients": [{"emailAddress": EXAMPLE_RECIPIENT}],
        },
    ),
    "message.suppressed": (
        BOUNCE,
        {
            "bounceType": "Permanent",
            "bounceSubType": "Suppressed",
            "bouncedRecipients": [{"emailAddress": EXAMPLE_RECIPIENT}],
        },
    ),
    "message.spam_complaint": (
        COMPLAINT,
        {"complainedRecipients": [{"emailAddress": EXAMPLE_RECIPIENT}], "complaintFeedbackType": "abuse"},
    ),
    "message.failed": ("Reject", {"reason": "Bad content"}),
    "message.opened": ("Open", {"ipAddress": "192.0.2.1", "userAgent": "Mozilla/5.0"}),
    "message.clicked": (
        "Click",
        {"ipAddress": "192.0.2.1", "userAgent": "Mozilla/5.0", "link": "https://example.com/"},
    ),
    "message.unsubscribed": (
        SUBSCRIPTION,
        {"contactList": "Newsletter", "source": "UnsubscribeHeader", "newTopicPreferences": {"unsubscribeAll": True}},
    ),
}


def _example_message(event_type: str, stamp: str) -> dict[str, Any]:
    name, body = EXAMPLE_EVENTS[event_type]
    mail = {
        "timestamp": stamp,
        "source": "sender@example.com",
        "messageId": f"send-test-{uuid.uuid4()}",
        "destination": [EXAMPLE_RECIPIENT],
        "commonHeaders": {"from": ["sender@example.com"], "to": [EXAMPLE_RECIPIENT], "subject": "bridge send-test"},
        "tags": {"ses:configuration-set": ["send-test"]},
    }
    stamped = body if name in UNSTAMPED_EVENTS else {**body, "timestamp": stamp}
    return {"eventType": name, "mail": mail, EVENT_OBJECTS[name]: stamped}
