"""Fuzzing with a fixed budget (issue 7): hostile bytes and headers against every verifier, every normaliser
and the pipeline behind them.

Properties, for every provider:
1. `verify` on any headers and body raises nothing but SignatureInvalid (StaleTimestamp is one); SES's
   `prepare`, with a certificate fetch that fails, SignatureInvalid or Unavailable.
2. `normalise` on any body returns CanonicalEvents or raises PayloadInvalid.
3. A verified delivery, whatever its body, ends as Published or DeadLettered, and every record it
   published decodes with the stock Avro deserializer (what `bridge consume` and consumers use).

Inputs are near-valid on purpose: the providers' own examples and the recorded fixtures, edited
(fields deleted, added, given the wrong type, every one of them at once), byte-mutated after signing,
with pathological JSON spliced in (100,000 nested arrays, integers of 5,000 digits, lone surrogates,
NaN), and nesting placed at the interpreter's recursion limit wherever the provider parses or writes
JSON. The budget is fixed and derandomized, so CI runs the same examples every time (BUDGET).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import functools
import itertools
import json
import random
import re
import secrets
import string
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, Phase, assume, example, given, settings
from hypothesis import strategies as st

from bridge.avro import Encoder, load_schemas
from bridge.errors import PayloadInvalid, SignatureInvalid, Unavailable
from bridge.events import DEAD_LETTER, EVENT_TYPES, CanonicalEvent, Delivery, topic_for
from bridge.fetch import FetchError, HttpGet
from bridge.headers import Headers
from bridge.metrics import Metrics
from bridge.pipeline import DeadLettered, HandshakeReply, Pipeline, Published
from bridge.providers import PROVIDERS, lettermint, mailgun, postmark, sendapi, sendgrid, standard_webhooks
from bridge.providers.auth import basic_header
from bridge.providers.base import Provider, ProviderIO
from bridge.providers.lettr import mapping as lettr_mapping
from bridge.providers.lettr.credentials import OAuthClient, mint
from bridge.providers.ses import EXAMPLE_TOPIC_ARN, SEND_TEST_CERT_URL, Ses, SesSource
from bridge.providers.ses import mapping as ses_mapping
from bridge.routes import Route
from bridge.settings import SourceSettings
from tests.support.fakes import FIXED, FakePublisher, MockRegistry
from tests.support.providers import FIXTURES

# The budget: examples per property and provider, fixed and derandomized (CI runs the same examples
# every time), no example database. On a 2-core machine the module runs in 16-19 s (64 tests).
BUDGET = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
# The sweeps try thousands of variants an example and name the failing field and value themselves:
# shrinking one would take minutes and say no more.
SWEEP = settings(BUDGET, max_examples=2, phases=[Phase.explicit, Phase.reuse, Phase.generate])

NOW = FIXED
RECEIVED = datetime.fromtimestamp(NOW, UTC)
PREFIX = "fuzz"


# --- JSON with pathological parts: fragments spliced in as text ------------------------------------


@dataclass(frozen=True)
class Raw:
    """JSON text put into a document as it is: what json.dumps cannot write (5,000 digits, 100,000 levels)."""

    text: str


@dataclass
class Embedded:
    """A JSON document carried as a JSON string (SNS's `Message`): edited as a document, written as text."""

    value: Any


def nested(depth: int, kind: str = "[") -> str:
    if kind == "{":
        return '{"a":' * depth + "0" + "}" * depth
    return "[" * depth + "]" * depth


FRAGMENTS = tuple(
    Raw(text)
    for text in (
        nested(100_000),
        nested(100_000, "{"),
        "[" * 100_000,  # never closed
        nested(2_000),
        "9" * 5_000,
        "1" + "0" * 4_000,  # 10**4000: parses, but no float holds it
        "-1" + "0" * 4_000,
        "-" + "1" * 5_001,
        "1" + "0" * 4_300,  # one digit past the default limit
        "1" * 4_300 + ".5",  # a float: no digit limit
        "0." + "0" * 5_000 + "1",
        "1e400",
        "-1e400",
        "1e-400",
        "NaN",
        "-Infinity",
        '"\\ud800"',
        '"a\\udfffb\\ud800"',
        '"\\u0000"',
        '"' + "x" * 20_000 + '"',
    )
)
INTERESTING_INTS = (0, -1, 1, 2**31 - 1, 2**31, 2**63, -(2**63) - 1, 10**11, 10**16, 10**17, 10**308, 10**309)
TRICKY_STRINGS = (
    "",
    " ",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59.999999-14:00",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "2025-08-08T20:15:12Z",
    "2025-08-08T20:15:12",
    "2025-08-08T20:15:12.1234567Z",
    "1754684112",
    "1754684112.5",
    "99999999999999999",
    "-1",
    "NaN",
    "550 5.1.1 No such user",
    "smtp; 550 5.1.1 user unknown",
    "250 2.0.0 OK",
    "Foo <user@example.com>",
    "<m@example.com>",
    "\ud800",
    "\x00",
    "é" * 3,
    "💥",
    EXAMPLE_TOPIC_ARN,
    SEND_TEST_CERT_URL,
    "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-unpinned.pem",
    "https://evil.example.com/cert.pem",
)


def dumps(document: Any, ensure_ascii: bool = True) -> str:
    """`document` as JSON text, its Raw parts as written and its Embedded parts as JSON strings."""
    raws: list[str] = []

    def prepare(value: Any) -> Any:
        if isinstance(value, Raw):
            raws.append(value.text)
            return f"\x00raw:{len(raws) - 1}\x00"
        if isinstance(value, Embedded):
            return dumps(value.value, ensure_ascii)
        if isinstance(value, dict):
            return {key: prepare(item) for key, item in value.items()}
        if isinstance(value, list):
            return [prepare(item) for item in value]
        return value

    text = json.dumps(prepare(document), ensure_ascii=ensure_ascii, separators=(",", ":"))
    return re.sub(r'"\\u0000raw:([0-9]+)\\u0000"', lambda found: raws[int(found.group(1))], text)


def encode(document: Any, ensure_ascii: bool = True) -> bytes:
    # surrogatepass: a lone surrogate becomes bytes that are not UTF-8, as a hostile client may send.
    return dumps(document, ensure_ascii).encode("utf-8", "surrogatepass")


# --- the providers, each with a source it accepts deliveries for and the way to sign them ---------


def _certificate(key: rsa.RSAPrivateKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    start = datetime(2025, 1, 1, tzinfo=UTC)
    builder = x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
    builder = builder.serial_number(1).not_valid_before(start).not_valid_after(start + timedelta(days=3650))
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


# 1024 bits, not AWS's 2048: the Sender loads the key for every signature, 7 times faster at this size.
SES_KEY = rsa.generate_private_key(public_exponent=65537, key_size=1024)
SES_PEM = SES_KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()
SES_CERT = _certificate(SES_KEY)
UNPINNED_CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-unpinned.pem"
SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())
SENDGRID_PRIVATE = base64.b64encode(
    SENDGRID_KEY.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
).decode()
SENDGRID_PUBLIC = base64.b64encode(
    SENDGRID_KEY.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
).decode()
BASIC_USER, BASIC_PASSWORD = "fuzz", "correct horse battery staple"
OAUTH = {"client_id": "fuzz-client", "client_secret": "client-secret-0123456789"}
OAUTH_CLIENT = OAuthClient.model_validate(OAUTH)
POSTMARK_HEADER = "X-Webhook-Token"

SOURCES: dict[str, dict[str, Any]] = {
    "lettermint": {"secrets": ["whsec_fuzz-secret"]},
    "lettr": {
        "secrets": ["lettr-fuzz-secret"],
        "options": {"basic_auth": [{"username": BASIC_USER, "password": BASIC_PASSWORD}]},
    },
    "lettr-oauth2": {
        "secrets": ["lettr-fuzz-secret"],
        "options": {"oauth2": {"clients": [OAUTH]}},
    },
    "standard-webhooks": {"secrets": ["whsec_" + base64.b64encode(b"fuzzing-key-of-24-bytes!").decode()]},
    "sendapi": {"secrets": ["whsec_" + "0123456789abcdef" * 2]},
    "sendgrid": {"secrets": [SENDGRID_PRIVATE], "options": {"public_keys": [SENDGRID_PUBLIC]}},
    "mailgun": {"secrets": ["key-fuzz-signing-key"]},
    "postmark": {
        "secrets": ["tok_fuzz-token"],
        "options": {"basic_auth": [{"username": BASIC_USER, "password": BASIC_PASSWORD}], "header": POSTMARK_HEADER},
    },
    "ses": {
        "secrets": [SES_PEM],
        "options": {"topic_arns": [EXAMPLE_TOPIC_ARN], "certificates": {SEND_TEST_CERT_URL: SES_CERT}},
    },
}
# The request headers each provider reads.
HEADER_NAMES: dict[str, tuple[str, ...]] = {
    "lettermint": ("x-lettermint-signature", "x-lettermint-delivery", "x-lettermint-attempt", "x-lettermint-timestamp"),
    "lettr": ("authorization", "lettr-signature"),
    "standard-webhooks": (
        "svix-id",
        "svix-timestamp",
        "svix-signature",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    ),
    "sendapi": ("x-sendapi-signature",),
    "sendgrid": ("x-twilio-email-event-webhook-signature", "x-twilio-email-event-webhook-timestamp"),
    "mailgun": (),
    "postmark": ("authorization", POSTMARK_HEADER.lower()),
    "ses": ("x-amz-sns-message-type", "x-amz-sns-topic-arn", "x-amz-sns-message-id"),
}
GENERIC_HEADERS = ("content-type", "content-length", "x-request-id", "user-agent")


async def refuse(url: str) -> bytes:
    """The getter of providers under test: nothing may be fetched unless a test says so."""
    raise FetchError(url, None, "no network in the fuzz tests")


@dataclass(frozen=True, eq=False)  # hashed by identity: strategies are cached per case
class Case:
    """One provider under test: a source it accepts deliveries for, the seeds to mutate, how to sign."""

    id: str
    provider: str
    source: SourceSettings
    seeds: tuple[Any, ...] = field(repr=False)
    # Signed inside the body (Mailgun, SES): only a JSON document can be signed, and signing rewrites it.
    in_body: bool = False

    def build(self, get: HttpGet = refuse) -> Provider[Any]:
        return PROVIDERS[self.provider].build(ProviderIO(http_get=get))

    @property
    def header_names(self) -> tuple[str, ...]:
        return HEADER_NAMES[self.provider]

    def sign(self, body: bytes, at: float = NOW) -> tuple[bytes, dict[str, str]]:
        """The Sender's signature, plus the credentials it leaves to the operator (Basic, Bearer).

        ValueError (or SignatureInvalid, for an SNS envelope) where the body cannot be signed.
        """
        signed, headers = PROVIDERS[self.provider].sender().sign(body, self.source, at)
        if self.id == "lettr":
            headers["Authorization"] = basic_header(BASIC_USER, BASIC_PASSWORD)
        elif self.id == "lettr-oauth2":
            headers["Authorization"] = "Bearer " + mint(OAUTH_CLIENT, self.source.name, int(at) + 600)
        return signed, headers


@functools.cache
def _deterministic() -> tuple[Callable[[], uuid.UUID], Callable[[int | None], bytes]]:
    ids, noise = itertools.count(1), random.Random(7)
    return (lambda: uuid.UUID(int=next(ids), version=4)), (lambda n=None: noise.randbytes(32 if n is None else n))


def _examples(provider: str) -> list[bytes]:
    """The Sender's example of every type it can send, with its random ids made deterministic."""
    sender = PROVIDERS[provider].sender()
    make_id, make_bytes = _deterministic()
    found = []
    with (
        mock.patch.object(uuid, "uuid4", make_id),
        mock.patch.object(secrets, "token_bytes", make_bytes),
        mock.patch.object(secrets, "token_hex", lambda n=None: make_bytes(n).hex()),
    ):
        for event_type in EVENT_TYPES:
            try:
                found.append(sender.example(event_type, RECEIVED))
            except ValueError:
                continue
    return found


def _decoded(body: bytes) -> Any:
    """A seed as a document; an SNS envelope's Message as an Embedded document where it is JSON."""
    document = json.loads(body)
    if isinstance(document, dict) and isinstance(document.get("Message"), str):
        with contextlib.suppress(ValueError):
            document["Message"] = Embedded(json.loads(document["Message"]))
    return document


def _seeds(provider: str) -> tuple[Any, ...]:
    examples = [_decoded(body) for body in _examples(provider)]
    recorded = [_decoded(path.read_bytes()) for path in sorted((FIXTURES / provider).glob("*.json"))]
    if provider == "ses":
        # SES's fixtures are the Message alone (sns.* are whole envelopes): wrap them in an example's envelope.
        template = examples[0]
        recorded = [
            document if "Type" in document else template | {"Message": Embedded(document)} for document in recorded
        ]
        # A certificate URL that is not pinned: `prepare` must fetch it.
        recorded.append(template | {"SigningCertURL": UNPINNED_CERT_URL})
    return tuple(examples + recorded)


def _case(case_id: str) -> Case:
    provider = case_id.removesuffix("-oauth2")
    tree = {"name": case_id, "provider": provider, **SOURCES[case_id]}
    return Case(
        case_id,
        provider,
        PROVIDERS[provider].source.model_validate(tree),
        _seeds(provider),
        provider in ("mailgun", "ses"),
    )


CASES = {case_id: _case(case_id) for case_id in SOURCES}
CASE_IDS = sorted(CASES)
PROVIDER_CASES = sorted({case.provider: case.id for case in CASES.values()}.values())  # one case per normaliser


# --- strategies ------------------------------------------------------------------------------------


def _keys(value: Any) -> Iterator[str]:
    if isinstance(value, Embedded):
        yield from _keys(value.value)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _keys(item)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, Embedded):
        yield from _strings(value.value)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str) and len(value) <= 200:
        yield value


# Every key and string of every seed, and the names each provider maps: what reaches the mapping code.
VOCABULARY = sorted(
    {text for case in CASES.values() for seed in case.seeds for text in _strings(seed)}
    | set(lettermint.MAPPED)
    | set(lettr_mapping.TYPES)
    | set(standard_webhooks.MAPPED)
    | set(sendapi.MAPPED)
    | set(sendgrid.EVENT_TYPES)
    | {"bounce", "blocked"}
    | set(mailgun.MAPPED)
    | {"failed", "permanent", "temporary"}
    | set(postmark.RECORD_TYPES)
    | set(postmark.BOUNCE_TYPES)
    | set(postmark.TIME_FIELDS.values())
    | {"Bounce", "SubscriptionChange"}
    | set(ses_mapping.EVENT_OBJECTS)
    | set(ses_mapping.EVENT_OBJECTS.values())
    | set(ses_mapping.RECIPIENT_LISTS.values())
    | set(ses_mapping.SUPPRESSED_SUBTYPES)
    | set(TRICKY_STRINGS)
)

keys = st.sampled_from(VOCABULARY) | st.text(max_size=12)
# One strategy per JSON type, so a field can be given a type it does not have.
BY_TYPE: dict[str, st.SearchStrategy[Any]] = {
    "null": st.none(),
    "bool": st.booleans(),
    "int": st.integers() | st.sampled_from(INTERESTING_INTS),
    "float": st.floats(),
    "str": st.sampled_from(VOCABULARY) | st.text(max_size=30),
    "raw": st.sampled_from(FRAGMENTS),
}
scalars = st.one_of(*BY_TYPE.values())
BY_TYPE["list"] = st.lists(scalars, max_size=3)
BY_TYPE["dict"] = st.dictionaries(keys, scalars, max_size=3)
values: st.SearchStrategy[Any] = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4), max_leaves=8
)


def json_type(value: Any) -> str:
    for name, kind in (("null", type(None)), ("bool", bool), ("int", int), ("float", float), ("str", str)):
        if isinstance(value, kind):
            return name
    return {Raw: "raw", dict: "dict", Embedded: "str"}.get(type(value), "list")


def wrong_type(value: Any) -> st.SearchStrategy[Any]:
    """A value of any JSON type but `value`'s."""
    return st.one_of(*(strategy for name, strategy in BY_TYPE.items() if name != json_type(value)))


Path_ = tuple[Any, ...]
INNER = "<embedded>"


def _children(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return list(value)
    if isinstance(value, list):
        return list(range(len(value)))
    return [INNER] if isinstance(value, Embedded) else []


def _child(value: Any, key: Any) -> Any:
    return value.value if key == INNER else value[key]


def paths(value: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    yield prefix
    for key in _children(value):
        yield from paths(_child(value, key), (*prefix, key))


def replaced(document: Any, path: Path_, new: Any) -> Any:
    if not path:
        return new
    parent = functools.reduce(_child, path[:-1], document)
    if path[-1] == INNER:
        parent.value = new
    else:
        parent[path[-1]] = new
    return document


@st.composite
def retyped(draw: st.DrawFn, document: Any, every: bool) -> Any:
    """`document` with its fields given a wrong type: every scalar field, or about one field in five."""
    for key in _children(document):
        value = _child(document, key)
        if not every and draw(st.integers(0, 4)) == 0:
            replaced(document, (key,), draw(wrong_type(value)))
        elif _children(value):
            draw(retyped(value, every))
        elif every:
            replaced(document, (key,), draw(wrong_type(value)))
    return document


@st.composite
def edited(draw: st.DrawFn, document: Any) -> Any:
    path = draw(st.sampled_from(list(paths(document))))
    target = functools.reduce(_child, path, document)
    action = draw(st.sampled_from(["replace", "retype", "delete", "insert", "duplicate", "deep"]))
    if action == "delete" and path and path[-1] != INNER:
        parent = functools.reduce(_child, path[:-1], document)
        del parent[path[-1]]
        return document
    if action == "insert" and isinstance(target, dict):
        target[draw(keys)] = draw(values)
        return document
    if action == "duplicate" and isinstance(target, list) and target:
        target.append(copy.deepcopy(target[draw(st.integers(0, len(target) - 1))]))
        return document
    if action == "deep":
        return replaced(document, path, draw(st.sampled_from(FRAGMENTS[:4])))
    if action == "retype":
        return replaced(document, path, draw(wrong_type(target)))
    return replaced(document, path, draw(values))


@st.composite
def documents(draw: st.DrawFn, case: Case) -> Any:
    """A seed (example or recorded fixture) with fields edited, deleted, added or given the wrong type."""
    document = copy.deepcopy(draw(st.sampled_from(case.seeds)))
    if draw(st.integers(0, 3)) == 0:  # wrong types everywhere: in every field, or in many
        document = draw(retyped(document, draw(st.booleans())))
    for _ in range(draw(st.integers(0, 4))):
        document = draw(edited(document))
    return document


@st.composite
def encoded(draw: st.DrawFn, documents: st.SearchStrategy[Any]) -> bytes:
    return encode(draw(documents), ensure_ascii=draw(st.booleans()))


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` with a few bytes flipped, inserted, deleted, or cut off."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(out)))
        action = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        if action == "flip" and at < len(out):
            out[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=4) | st.sampled_from([b"[", b"{", b'"', b"\\", b"\xff"]))
        elif action == "delete":
            del out[at : at + draw(st.integers(1, 8))]
        else:
            del out[at:]
    return bytes(out)


@functools.cache
def bodies(case: Case) -> st.SearchStrategy[bytes]:
    """Anything a client may send: bytes, JSON, pathological JSON, and mostly near-valid documents."""
    near = encoded(documents(case))
    return st.one_of(
        st.binary(max_size=200),
        encoded(values),
        st.sampled_from(FRAGMENTS).map(lambda raw: raw.text.encode()),
        near,
        near,
        near.flatmap(mutated),
    )


@functools.cache
def signable(case: Case) -> st.SearchStrategy[bytes]:
    """What gets signed for a verified delivery: any body, or for in-body signatures an edited document."""
    return encoded(documents(case)) if case.in_body else bodies(case)


digit_strings = st.text("0123456789", max_size=20) | st.sampled_from([str(int(NOW)), "9" * 16, "9" * 17, " 1 ", "-1"])
hex_strings = st.text("0123456789abcdefABCDEF", max_size=70) | st.just("a" * 64)
b64_strings = st.binary(max_size=80).map(lambda raw: base64.b64encode(raw).decode()) | st.text(
    string.ascii_letters + string.digits + "+/=-_.", max_size=100
)
near_valid_values = st.one_of(
    st.builds("t={},v1={}".format, digit_strings, hex_strings),
    st.lists(
        st.sampled_from(["t=1", "t=", "v1=", "v1=" + "a" * 64, "v2=x", "=", "", "t=" + str(int(NOW))]), max_size=4
    ).map(",".join),
    hex_strings.map("sha256=".__add__),
    st.lists(st.builds("{},{}".format, st.sampled_from(["v1", "v1a", "v2", ""]), b64_strings), max_size=3).map(
        " ".join
    ),
    b64_strings.map("Basic ".__add__),
    st.builds(basic_header, st.text(max_size=10), st.text(max_size=10)),
    st.builds("Bearer v1.{}.{}".format, b64_strings, b64_strings),
    st.sampled_from(["Bearer", "Basic", "Bearer v1..", "Notification", "SubscriptionConfirmation", EXAMPLE_TOPIC_ARN]),
    digit_strings,
    hex_strings,
    b64_strings,
)


def header_bytes(value: str) -> bytes:
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass")


@functools.cache
def header_values() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=100), st.text(max_size=60).map(header_bytes), near_valid_values.map(header_bytes)
    )


Pairs = list[tuple[bytes, bytes]]


@st.composite
def header_pairs(draw: st.DrawFn, case: Case) -> Pairs:
    names = st.sampled_from(case.header_names + GENERIC_HEADERS) | st.text(
        string.ascii_lowercase + "-", min_size=1, max_size=16
    )
    return draw(st.lists(st.tuples(names.map(str.encode), header_values()), max_size=6))


@st.composite
def tampered(draw: st.DrawFn, pairs: Pairs, case: Case) -> Pairs:
    """Correct headers with one dropped, repeated, replaced or altered, and maybe hostile ones added."""
    out = list(pairs)
    if out:
        at = draw(st.integers(0, len(out) - 1))
        name, value = out[at]
        action = draw(st.sampled_from(["keep", "drop", "repeat", "replace", "alter"]))
        if action == "drop":
            del out[at]
        elif action == "repeat":
            out.append((name, draw(st.sampled_from([value]) | header_values())))
        elif action == "replace":
            out[at] = (name, draw(header_values()))
        elif action == "alter":
            out[at] = (name, draw(mutated(value)))
    return out + draw(header_pairs(case))


def signed_pairs(case: Case, body: bytes, at: float = NOW) -> tuple[bytes, Pairs] | None:
    try:
        signed, headers = case.sign(body, at)
    except (ValueError, SignatureInvalid):
        return None
    return signed, [(name.lower().encode("latin-1"), header_bytes(value)) for name, value in headers.items()]


SIGNING_TIMES = [NOW, NOW - 299, NOW + 300, NOW - 301, NOW + 3601, 0.0, 1e10]


@st.composite
def deliveries(draw: st.DrawFn, case: Case) -> tuple[Pairs, bytes]:
    """(raw headers, body): hostile, or signed and then tampered with, or signed as it is."""
    kind = draw(st.sampled_from(["hostile", "tampered", "tampered", "signed"]))
    body = draw(bodies(case) if kind == "hostile" else signable(case))
    if kind == "hostile":
        return draw(header_pairs(case)), body
    at = draw(st.sampled_from(SIGNING_TIMES)) if kind == "tampered" else NOW
    made = signed_pairs(case, body, at)
    if made is None:
        return draw(header_pairs(case)), body
    signed, pairs = made
    if kind == "signed":
        return pairs, signed
    if draw(st.booleans()):
        signed = draw(mutated(signed))
    return draw(tampered(pairs, case)), signed


# --- the checks -------------------------------------------------------------------------------------


def check_verify(case: Case, provider: Provider[Any], pairs: Pairs, body: bytes) -> bool:
    """Whether `verify` accepted; it may refuse only with SignatureInvalid (StaleTimestamp is one)."""
    try:
        provider.verify(Headers(raw=pairs), body, case.source, NOW)
    except SignatureInvalid:
        return False
    return True


def check_normalise(case: Case, provider: Provider[Any], pairs: Pairs, body: bytes) -> None:
    """`normalise` returns a list of CanonicalEvents or raises PayloadInvalid."""
    try:
        events = provider.normalise(Delivery(case.id, case.provider, Headers(raw=pairs), body, RECEIVED))
    except PayloadInvalid:
        return
    assert isinstance(events, list) and all(isinstance(event, CanonicalEvent) for event in events)


ENCODER_REGISTRY = MockRegistry("fuzz")
ENCODER = Encoder(ENCODER_REGISTRY, load_schemas(), PREFIX)
ENCODER.register()
DESERIALIZER = AvroDeserializer(ENCODER_REGISTRY)
# Generous: the record limit is the pipeline's own concern (and its own tests'); here a record must decode.
MAX_RECORD_BYTES = 10 * 1024 * 1024


def failures(metrics: Metrics) -> float:
    """Deliveries the pipeline's safety net caught: a provider or encoder bug, dead-lettered."""
    return sum(
        sample.value
        for family in metrics.registry.collect()
        if family.name == "bridge_processing_failures"
        for sample in family.samples
        if sample.name.endswith("_total")
    )


def check_pipeline(case: Case, pairs: Pairs, body: bytes) -> None:
    """A verified delivery ends as Published (every record decodable) or DeadLettered (its body kept whole),
    and not by way of the pipeline's safety net, which catches bugs."""
    publisher = FakePublisher()
    route = Route.build(case.source, case.build())  # a fresh provider: Mailgun remembers tokens
    delivery = Delivery(case.id, case.provider, Headers(raw=pairs), body, RECEIVED)
    metrics = Metrics()
    pipeline = Pipeline(ENCODER, publisher, metrics, PREFIX, max_record_bytes=MAX_RECORD_BYTES)
    outcome = asyncio.run(pipeline.process(route, delivery))
    assert failures(metrics) == 0, f"a bug, dead-lettered by the pipeline's safety net: {outcome}"
    if isinstance(outcome, DeadLettered):
        [letter] = publisher.records
        assert letter.topic == topic_for(PREFIX, DEAD_LETTER) and letter.value == body
        return
    if case.provider == "ses" and isinstance(outcome, HandshakeReply):
        return
    assert isinstance(outcome, Published), outcome
    assert len(publisher.records) == len(outcome.events)
    for record in publisher.records:
        decoded = DESERIALIZER(record.value, SerializationContext(record.topic, MessageField.VALUE))
        event_id = dict(record.headers)["event_id"]
        assert isinstance(decoded, dict) and isinstance(event_id, bytes) and decoded["event_id"] == event_id.decode()


def verified(case: Case, body: bytes) -> tuple[bytes, Pairs]:
    """`body` signed by the provider's Sender. Where the signature is in the body (Mailgun, SES) an edited
    document may not be signable, or not verifiable (`Type: null`): such examples are not deliveries."""
    made = signed_pairs(case, body)
    assume(made is not None)
    assert made is not None
    if case.in_body:
        assume(check_verify(case, case.build(), made[1], made[0]))
    else:
        assert check_verify(case, case.build(), made[1], made[0]), "the Sender's signature must verify"
    return made


# --- every field given every kind of wrong value, one at a time -------------------------------------

# Always among the values tried: the types and values that broke parsers and mappers before.
WRONG_VALUES: tuple[Any, ...] = (
    None,
    True,
    -1,
    2**31,
    Raw("1" + "0" * 4_000),  # 10**4000, written once: converting it to text and back costs
    float("inf"),
    float("nan"),
    "",
    "\ud800",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59.999999-14:00",
    [],
    [[1]],
    {"a": [1]},
)
# Objects with every key any seed has, so whatever a mapper reads from a nested object (an entry of a
# list of recipients, tags, topics) is of the wrong type too.
SEED_KEYS = sorted({key for case in CASES.values() for seed in case.seeds for key in _keys(seed)})
_NASTY = ([[1]], Raw("1" + "0" * 400), "\ud800", "0001-01-01T00:00:00+14:00", {"a": [1]}, -1, None, float("nan"))
_WIDE = {key: [[1]] for key in SEED_KEYS}
_WIDER = {key: _NASTY[index % len(_NASTY)] for index, key in enumerate(SEED_KEYS)}
# Written once, as text: they go into thousands of variants.
WIDE_VALUES: tuple[Any, ...] = tuple(Raw(dumps(value)) for value in (_WIDE, [_WIDE], _WIDER, [_WIDER]))
PATHS_PER_SEED = 12


def palette(data: st.DataObject) -> tuple[Any, ...]:
    """WRONG_VALUES, WIDE_VALUES, and a few drawn values (only those are drawn: failures print the draws)."""
    return WRONG_VALUES + WIDE_VALUES + tuple(data.draw(values, label="value") for _ in range(3))


def swept(data: st.DataObject, seeds: tuple[Any, ...], per_seed: int) -> Iterator[tuple[Any, list[Path_]]]:
    """Each seed (a copy), with up to `per_seed` of its paths, drawn where it has more."""
    chooser = data.draw(st.randoms(use_true_random=False), label="paths")
    for seed in seeds:
        document = copy.deepcopy(seed)
        where = list(paths(document))
        yield document, where if len(where) <= per_seed else chooser.sample(where, per_seed)


def variants(document: Any, where: list[Path_], palette: tuple[Any, ...]) -> Iterator[tuple[Path_, Any, bytes]]:
    """`document` encoded with each path in turn holding each value (the document is restored after).

    WIDE_VALUES go only where there is an object or a list: that is where a mapper looks inside.
    """
    for path in where:
        container = isinstance(functools.reduce(_child, path, document), dict | list | Embedded)
        for value in palette if container else [value for value in palette if value not in WIDE_VALUES]:
            if not path:
                yield path, value, encode(value)
                continue
            parent, key = functools.reduce(_child, path[:-1], document), path[-1]
            original = _child(parent, key)
            replaced(document, path, value)
            try:
                yield path, value, encode(document)
            finally:
                replaced(document, path, original)


def sweep(document: Any, where: list[Path_], palette: tuple[Any, ...], check: Callable[[bytes], object]) -> None:
    for path, value, body in variants(document, where, palette):
        try:
            check(body)
        except Exception as error:
            raise AssertionError(f"with {path} = {repr(value)[:60]}: {type(error).__name__}: {error}") from error


# --- regressions: what these properties found, each now a documented error -------------------------

SIGNED_AT = str(int(NOW))
HEX64 = "a" * 64
SNS = {  # an SNS Notification that is well formed up to its signature
    "Type": "Notification",
    "MessageId": "m-1",
    "TopicArn": EXAMPLE_TOPIC_ARN,
    "Message": "{}",
    "Timestamp": "2025-08-08T20:15:12.000Z",
    "SignatureVersion": "2",
    "Signature": "c2ln",
    "SigningCertURL": SEND_TEST_CERT_URL,
}


def sns(message: dict[str, Any] | None = None, **fields: Any) -> bytes:
    envelope = SNS | fields | ({"Message": json.dumps(message)} if message is not None else {})
    return json.dumps(envelope).encode()


# verify: Unicode errors on unauthenticated bodies (each was a 500 anyone could trigger).
MAILGUN_SURROGATE_TOKEN = json.dumps(
    {"signature": {"timestamp": SIGNED_AT, "token": "\ud800", "signature": HEX64}, "event-data": {}}
).encode()  # mailgun.py _signature: the token went into the HMAC, UnicodeEncodeError
SES_SURROGATE_FIELD = sns(MessageId="\ud800")  # ses/sns.py string_to_sign: UnicodeEncodeError
SES_NON_ASCII_SIGNATURE = sns(Signature="é")  # ses/sns.py _base64: ValueError from b64decode
# normalise: lists where a mapper looked a string up, a time with no UTC equivalent.
SENDGRID_TYPE_LIST = b'[{"event":"bounce","timestamp":1754684112,"type":[1]}]'  # sendgrid.py _event_type
SES_SUBTYPE_LIST = sns({"eventType": "Bounce", "bounce": {"bounceSubType": [1], "bounceType": "Permanent"}})
SES_COMPLAINT_SUBTYPE_LIST = sns({"eventType": "Complaint", "complaint": {"complaintSubType": {"a": 1}}})
SES_TOPIC_LIST = sns(  # ses/mapping.py _opted_out
    {
        "eventType": "Subscription",
        "subscription": {
            "newTopicPreferences": {"topicSubscriptionStatus": [{"topicName": [1], "subscriptionStatus": "OptOut"}]}
        },
    }
)
RESEND_TAG_NAME_LIST = (  # standard_webhooks.py _tags
    b'{"type":"email.sent","created_at":"2025-08-08T20:15:12Z","data":{"tags":[{"name":[1],"value":"x"}]}}'
)
POSTMARK_BEFORE_YEAR_ONE = (  # postmark.py _event_id: astimezone(UTC) raised OverflowError
    b'{"RecordType":"Delivery","MessageID":"m-1","Recipient":"a@example.com","DeliveredAt":"0001-01-01T00:00:00+14:00"}'
)
# bridge/providers/fields.py number_field: float(10**400) raises OverflowError (fields.py is not ours to edit).
LETTERMINT_HUGE_SCORE = (
    b'{"id":"e-1","event":"message.inbound","timestamp":"2025-08-08T20:15:12Z","data":{"spam_score":1'
    + b"0" * 400
    + b"}}"
)


def lettermint_at(timestamp: str) -> bytes:
    return json.dumps({"id": "e-1", "event": "message.delivered", "timestamp": timestamp, "data": {}}).encode()


ALL_HEADER_NAMES = tuple(sorted({name for names in HEADER_NAMES.values() for name in names} | set(GENERIC_HEADERS)))
any_bodies = st.one_of(
    st.binary(max_size=300), encoded(values), st.sampled_from(FRAGMENTS).map(lambda raw: raw.text.encode())
)
any_headers = st.lists(st.tuples(st.sampled_from(ALL_HEADER_NAMES).map(str.encode), header_values()), max_size=6)


# --- 1. verify: accepted, or SignatureInvalid ---------------------------------------------------------


@BUDGET
@given(case_id=st.sampled_from(CASE_IDS), pairs=any_headers, body=any_bodies)
@example(case_id="mailgun", pairs=[], body=MAILGUN_SURROGATE_TOKEN)
@example(case_id="ses", pairs=[], body=SES_SURROGATE_FIELD)
@example(case_id="ses", pairs=[], body=SES_NON_ASCII_SIGNATURE)
def test_verify_on_arbitrary_bytes_and_headers(case_id: str, pairs: Pairs, body: bytes) -> None:
    case = CASES[case_id]
    check_verify(case, case.build(), pairs, body)


@pytest.mark.parametrize("case_id", CASE_IDS)
@BUDGET
@given(data=st.data())
def test_verify_refuses_only_with_signature_invalid(case_id: str, data: st.DataObject) -> None:
    """Hostile headers and bodies, and signed deliveries tampered with: accepted, or SignatureInvalid."""
    case = CASES[case_id]
    pairs, body = data.draw(deliveries(case), label="delivery")
    check_verify(case, case.build(), pairs, body)


HEADER_VALUES = (b"", b" ", b"\xff\xfe", b"t=", b"t=,v1=", b"v1,", b"sha256=" + b"g" * 64, b"9" * 17, b"Basic \xff")


@pytest.mark.parametrize("case_id", CASE_IDS)
@settings(BUDGET, max_examples=8)
@given(data=st.data())
def test_verify_with_each_header_and_field_tampered(case_id: str, data: st.DataObject) -> None:
    """A signed delivery with each header dropped, repeated or replaced, and (where the signature is in
    the body) each field of the body given each wrong value: accepted, or SignatureInvalid."""
    case = CASES[case_id]
    provider = case.build()
    made = signed_pairs(case, encode(data.draw(st.sampled_from(case.seeds), label="seed")))
    assume(made is not None)
    assert made is not None
    body, pairs = made
    drawn = tuple(data.draw(header_values(), label="header value") for _ in range(4))
    for index, (name, value) in enumerate(pairs):
        for changed in (
            [pair for at, pair in enumerate(pairs) if at != index],
            [*pairs, (name, value)],
            *([*pairs[:index], (name, new), *pairs[index + 1 :]] for new in HEADER_VALUES + drawn),
        ):
            check_verify(case, provider, changed, body)
    if case.in_body:
        [(document, where)] = swept(data, (_decoded(body),), 40)
        sweep(document, where, palette(data), lambda variant: check_verify(case, provider, pairs, variant))


@BUDGET
@given(data=st.data(), status=st.sampled_from([None, 400, 403, 404, 429, 500, 503]), answer=st.none() | st.binary())
def test_ses_prepare_fails_only_as_signature_invalid_or_unavailable(
    data: st.DataObject, status: int | None, answer: bytes | None
) -> None:
    """With the certificate fetch failing (or answering garbage): SignatureInvalid, or Unavailable to retry."""
    case = CASES["ses"]
    pairs, body = data.draw(deliveries(case), label="delivery")

    async def get(url: str) -> bytes:
        if answer is None:
            raise FetchError(url, status, f"HTTP {status}" if status else "timed out")
        return answer

    ses, source = case.build(get), case.source
    assert isinstance(ses, Ses) and isinstance(source, SesSource)
    try:
        asyncio.run(ses.prepare(Headers(raw=pairs), body, source, NOW))
        ses.verify(Headers(raw=pairs), body, source, NOW)
    except (SignatureInvalid, Unavailable):
        pass


# --- 2. normalise: events, or PayloadInvalid ------------------------------------------------------------


@BUDGET
@given(case_id=st.sampled_from(PROVIDER_CASES), body=any_bodies)
@example(case_id="sendgrid", body=SENDGRID_TYPE_LIST)
@example(case_id="ses", body=SES_SUBTYPE_LIST)
@example(case_id="ses", body=SES_COMPLAINT_SUBTYPE_LIST)
@example(case_id="ses", body=SES_TOPIC_LIST)
@example(case_id="standard-webhooks", body=RESEND_TAG_NAME_LIST)
@example(case_id="postmark", body=POSTMARK_BEFORE_YEAR_ONE)
@example(case_id="lettermint", body=LETTERMINT_HUGE_SCORE)
def test_normalise_on_arbitrary_bodies(case_id: str, body: bytes) -> None:
    case = CASES[case_id]
    check_normalise(case, case.build(), [], body)


@pytest.mark.parametrize("case_id", PROVIDER_CASES)
@BUDGET
@given(data=st.data())
def test_normalise_returns_events_or_raises_payload_invalid(case_id: str, data: st.DataObject) -> None:
    """Near-valid bodies (edited examples and fixtures, byte-mutated), with any headers."""
    case = CASES[case_id]
    body = data.draw(bodies(case), label="body")
    check_normalise(case, case.build(), data.draw(header_pairs(case), label="headers"), body)


@pytest.mark.parametrize("case_id", PROVIDER_CASES)
@SWEEP
@given(data=st.data())
def test_normalise_with_each_field_given_each_wrong_value(case_id: str, data: st.DataObject) -> None:
    """Every example and recorded fixture with each of its fields, one at a time, given each wrong value."""
    case = CASES[case_id]
    provider = case.build()
    values = palette(data)
    for document, where in swept(data, case.seeds, PATHS_PER_SEED):
        sweep(document, where, values, lambda body: check_normalise(case, provider, [], body))


# --- 3. a verified delivery: records every consumer can decode, or a dead letter --------------------


@settings(BUDGET, max_examples=BUDGET.max_examples * 2)
@given(case_id=st.sampled_from(CASE_IDS), body=any_bodies)
@example(case_id="lettermint", body=lettermint_at("0001-01-01T00:00:00+14:00"))
@example(case_id="lettermint", body=lettermint_at("9999-12-31T23:59:59.999999-14:00"))
@example(case_id="lettermint", body=lettermint_at("0001-01-01T00:00:00Z"))
@example(case_id="postmark", body=POSTMARK_BEFORE_YEAR_ONE)
@example(case_id="sendgrid", body=SENDGRID_TYPE_LIST)
@example(case_id="standard-webhooks", body=RESEND_TAG_NAME_LIST)
@example(case_id="ses", body=SES_SUBTYPE_LIST)
def test_a_verified_arbitrary_body_ends_published_or_dead_lettered(case_id: str, body: bytes) -> None:
    case = CASES[case_id]
    signed, pairs = verified(case, body)
    check_pipeline(case, pairs, signed)


@pytest.mark.parametrize("case_id", CASE_IDS)
@BUDGET
@given(data=st.data())
def test_a_verified_delivery_ends_published_or_dead_lettered(case_id: str, data: st.DataObject) -> None:
    """Any body the provider's Sender signs (an edited document, for in-body signatures) goes through
    the pipeline to records every consumer can decode, or to a dead letter."""
    case = CASES[case_id]
    body, pairs = verified(case, data.draw(signable(case), label="body"))
    check_pipeline(case, pairs, body)


# --- nesting at the interpreter's limit: parsed fine, then too deep to write back ----------------------

# How much deeper than the probe's limit a provider's own json.loads may sit, give or take.
NESTING_OFFSETS = range(-8, 2)


def deepest_parse() -> int:
    """The deepest array nesting json.loads accepts when called from here (it shrinks as the stack grows)."""
    low, high = 1, sys.getrecursionlimit() + 10
    while low < high:
        middle = (low + high + 1) // 2
        try:
            json.loads(nested(middle))
        except RecursionError:
            high = middle - 1
        else:
            low = middle
    return low


def at_the_limit(document: Any, path: Path_, deepest: int) -> Iterator[bytes]:
    """`document` with arrays at `path` nested as deep as json.loads only just accepts, and around that."""
    for offset in NESTING_OFFSETS:
        depth = max(1, deepest + offset - len(path))
        yield encode(replaced(copy.deepcopy(document), path, Raw(nested(depth))))


@pytest.mark.parametrize("case_id", PROVIDER_CASES)
@settings(BUDGET, max_examples=BUDGET.max_examples // 2)  # each example tries every offset, at a few paths
@given(data=st.data())
def test_nesting_at_the_recursion_limit(case_id: str, data: st.DataObject) -> None:
    """A document json.loads only just accepts, wherever in the document: whatever the provider then does
    with it (writes it back as `raw`, stringifies metadata), verify and normalise end as documented."""
    case = CASES[case_id]
    document = data.draw(st.sampled_from(case.seeds), label="seed")
    everywhere = list(paths(document))
    provider = case.build()
    for path in data.draw(st.randoms(use_true_random=False)).sample(everywhere, min(3, len(everywhere))):
        for body in at_the_limit(document, path, deepest_parse()):
            check_verify(case, provider, [], body)  # Mailgun and SES parse the body to verify it
            check_normalise(case, provider, [], body)


async def process_at_the_limit(case: Case, document: Any, path: Path_) -> None:
    """The pipeline on each nesting, measured where the pipeline runs: an event loop's stack is deeper."""
    for unsigned in at_the_limit(document, path, deepest_parse()):
        made = signed_pairs(case, unsigned)
        if made is None:
            continue
        body, pairs = made
        metrics, publisher = Metrics(), FakePublisher()
        pipeline = Pipeline(ENCODER, publisher, metrics, PREFIX, max_record_bytes=MAX_RECORD_BYTES)
        delivery = Delivery(case.id, case.provider, Headers(raw=pairs), body, RECEIVED)
        try:
            outcome = await pipeline.process(Route.build(case.source, case.build()), delivery)
        except SignatureInvalid:  # too deep to parse here, where an in-body signature is read
            assert case.in_body
            continue
        except Unavailable:  # the seed whose certificate is not pinned: no network to fetch it
            assert case.provider == "ses"
            continue
        assert failures(metrics) == 0, f"a bug, dead-lettered by the pipeline's safety net: {outcome}"
        assert isinstance(outcome, Published | DeadLettered), outcome


@pytest.mark.parametrize("case_id", CASE_IDS)
@settings(BUDGET, max_examples=BUDGET.max_examples // 4)
@given(data=st.data())
def test_nesting_at_the_recursion_limit_in_the_pipeline(case_id: str, data: st.DataObject) -> None:
    case = CASES[case_id]
    document = data.draw(st.sampled_from(case.seeds), label="seed")
    path = data.draw(st.sampled_from(list(paths(document))), label="path")
    asyncio.run(process_at_the_limit(case, document, path))
