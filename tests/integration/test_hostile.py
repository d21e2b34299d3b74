"""The hostile-input suite: every class of hostile or pathological traffic against a real `bridge serve`
on the real broker, then a table of what happened. Nothing may answer 5xx, nothing unauthenticated may
be published, no slow client may outlive its deadline, and the process must be alive at the end."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]

from bridge.providers.lettermint import signature_headers
from bridge.providers.standard_webhooks import signature_headers as svix_headers
from tests.support.http import close, read_response, request, until_closed
from tests.support.stack import Stack, read_topic, start_bridge

pytestmark = pytest.mark.integration
SECRET = "whsec_hostile"
SVIX_SECRET = "whsec_" + base64.b64encode(b"hostile-standard-webhooks-key!!").decode()
LIMITS = {
    "head_timeout_seconds": 1,
    "body_timeout_seconds": 1,
    "keep_alive_seconds": 1,
    "max_body_bytes": 1048576,
    "max_header_bytes": 8192,
    "max_headers": 50,
}
DEADLINE_GRACE = 2.0  # seconds past a deadline before a still-open connection counts as "still connected"
SOURCES = f"""
- {{name: lm, provider: lettermint, secrets: ["{SECRET}"]}}
- {{name: sw, provider: standard-webhooks, secrets: ["{SVIX_SECRET}"]}}
- {{name: pm, provider: postmark, options: {{basic_auth: [{{username: hook, password: "{SECRET}"}}]}}}}
"""
MARKER = f"hostile-{uuid.uuid4().hex}"  # in every unauthenticated body: none may reach a topic


@dataclass
class Tally:
    tried: int = 0
    answers: Counter[str] = field(default_factory=Counter)
    still_connected: int = 0


@dataclass(frozen=True)
class Target:
    url: str
    port: int
    prefix: str
    log: Path

    async def exchange(self, raw: bytes, timeout: float = 10) -> str:
        """Send `raw`, return the status code, or "closed" if the server closed without answering."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(raw)
            await writer.drain()
            return str((await asyncio.wait_for(read_response(reader), timeout)).status)
        except (asyncio.IncompleteReadError, ConnectionError):
            return "closed"
        finally:
            await close(writer)


@pytest.fixture(scope="module")
def target(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    folder = tmp_path_factory.mktemp("hostile")
    # JSON logs, as the container writes them: every line must parse, and none may carry a secret.
    with start_bridge(stack, folder, SOURCES, {"BRIDGE_LOG_FORMAT": "json"}, **LIMITS) as (url, prefix, _):
        yield Target(url, int(url.rsplit(":", 1)[1]), prefix, folder / "bridge.log")


def lettermint(body: bytes, secret: str = SECRET, at: float | None = None) -> bytes:
    headers = signature_headers(body, secret, time.time() if at is None else at)
    return request("POST", "/webhooks/lm", {**headers, "Content-Type": "application/json"}, body)


def unauthenticated_body() -> bytes:
    return json.dumps({"id": uuid.uuid4().hex, "event": "message.delivered", "data": {"note": MARKER}}).encode()


def signed_envelope(**data: object) -> bytes:
    stamp = data.pop("timestamp", "2026-12-01T09:00:00Z")
    return json.dumps({"id": uuid.uuid4().hex, "event": "message.sent", "timestamp": stamp, "data": data}).encode()


async def answers(target: Target, raws: list[bytes]) -> list[str]:
    return list(await asyncio.gather(*(target.exchange(raw) for raw in raws)))


async def unauthenticated(target: Target) -> list[str]:
    body = unauthenticated_body()
    stale = time.time() - 3600
    svix = svix_headers(body, "whsec_" + base64.b64encode(b"not-the-key-at-all-not-the-key").decode(), time.time())
    return await answers(
        target,
        [
            request("POST", "/webhooks/lm", {"Content-Type": "application/json"}, body),  # unsigned
            lettermint(body, secret="whsec_forged"),  # wrong secret
            lettermint(body, at=stale),  # stale
            request("POST", "/webhooks/sw", svix, body),  # Standard Webhooks, wrong key
            request("POST", "/webhooks/sw", {"svix-id": "x", "svix-timestamp": "1", "svix-signature": "v1,AAAA"}, body),
            request(
                "POST", "/webhooks/pm", {"Authorization": "Basic " + base64.b64encode(b"hook:guess").decode()}, body
            ),
            request("POST", "/webhooks/pm", {"Authorization": "Bearer " + "A" * 4000}, body),
        ],
    )


async def protocol_abuse(target: Target) -> list[str]:
    return await answers(
        target,
        [
            b"GARBAGE\r\n\r\n",
            b"POST /webhooks/lm HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
            b"POST /webhooks/lm HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            request("POST", "/webhooks/nope", {}, b"{}"),  # unknown source
            request("GET", "/webhooks/lm"),  # wrong method
        ],
    )


async def oversized(target: Target) -> list[str]:
    big = b"x" * (LIMITS["max_body_bytes"] + 1)
    return await answers(
        target,
        [
            request("POST", "/webhooks/lm", {}, big),  # body over the limit
            request("POST", "/webhooks/lm", {"X-Big": "a" * 1_000_000}, b"{}"),  # one huge header
            request("POST", "/webhooks/lm", {f"X-H{i}": "v" for i in range(200)}, b"{}"),  # too many headers
        ],
    )


async def signed_pathological(target: Target) -> list[str]:
    return await answers(
        target,
        [
            lettermint(b"[" * 100_000 + b"]" * 100_000),
            lettermint(
                b'{"id":"x","event":"message.sent","timestamp":"2026-12-01T09:00:00Z","data":{"n":'
                + b"9" * 6000
                + b"}}"
            ),
            lettermint(signed_envelope(timestamp="0001-01-01T00:00:00+14:00")),
            lettermint(signed_envelope(timestamp="9999-12-31T23:59:59.999999-14:00")),
            lettermint(signed_envelope(subject="\\ud800 lone surrogate")),
            lettermint(b'{"id": 1, "event": ["message.sent"], "data": "nope"}'),
            lettermint(b"\xff\xfe not utf-8"),
            lettermint(signed_envelope(timestamp="user@example.com")),  # the dead-letter reason quotes it
            lettermint(signed_envelope(subject="s" * 1_020_000)),  # just under the body limit, published
        ],
    )


async def slow(target: Target, tally: Tally) -> list[str]:
    """Idle, dripping headers, a stalled body, a dripping body: each must be cut off at its deadline."""
    deadline = max(LIMITS["head_timeout_seconds"], LIMITS["body_timeout_seconds"], LIMITS["keep_alive_seconds"])

    async def one(script: Callable[[asyncio.StreamWriter], Awaitable[None]]) -> str:
        reader, writer = await asyncio.open_connection("127.0.0.1", target.port)
        try:
            sending = asyncio.ensure_future(script(writer))
            received, _ = await until_closed(reader, deadline + DEADLINE_GRACE)
            sending.cancel()
            return received.split(b" ", 2)[1].decode() if received.startswith(b"HTTP/1.1 ") else "closed"
        except TimeoutError:
            tally.still_connected += 1
            return "still connected"
        finally:
            await close(writer)

    async def idle(writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(60)

    async def drip_head(writer: asyncio.StreamWriter) -> None:
        for byte in b"POST /webhooks/lm HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"y" * 100:
            writer.write(bytes([byte]))
            await asyncio.sleep(0.2)

    async def stall_body(writer: asyncio.StreamWriter) -> None:
        writer.write(b'POST /webhooks/lm HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"half":')
        await asyncio.sleep(60)

    async def drip_body(writer: asyncio.StreamWriter) -> None:
        writer.write(b"POST /webhooks/lm HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(1000):
            writer.write(b"x")
            await asyncio.sleep(0.2)

    scripts = [idle, drip_head, stall_body, drip_body] * 3
    return list(await asyncio.gather(*(one(script) for script in scripts)))


async def aborted(target: Target) -> list[str]:
    async def one() -> str:
        _, writer = await asyncio.open_connection("127.0.0.1", target.port)
        writer.write(b'POST /webhooks/lm HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{"cut":')
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.transport.abort()
        return "aborted by client"

    return list(await asyncio.gather(*(one() for _ in range(5))))


def unauthenticated_published(stack: Stack, prefix: str) -> int:
    topics = AdminClient({"bootstrap.servers": stack.bootstrap_servers}).list_topics(timeout=10).topics
    mine = sorted(topic for topic in topics if topic.startswith(prefix + "."))
    return sum(
        1
        for topic in mine
        for record in read_topic(stack.bootstrap_servers, topic)
        if MARKER.encode() in (record.value() or b"")
    )


def test_hostile_traffic(stack: Stack, target: Target, capsys: pytest.CaptureFixture[str]) -> None:
    table: dict[str, Tally] = {}

    async def run() -> None:
        classes: dict[str, Callable[[], Awaitable[list[str]]]] = {
            "unauthenticated (unsigned, forged, stale, wrong key, bad Basic/Bearer)": lambda: unauthenticated(target),
            "protocol abuse (garbage, bad framing, unknown source, wrong method)": lambda: protocol_abuse(target),
            "oversized (body, one 1 MB header, 200 headers)": lambda: oversized(target),
            "signed pathological JSON (nesting, digits, dates, surrogates, types, 1.02 MB)": lambda: (
                signed_pathological(target)
            ),
            "client aborts mid-body": lambda: aborted(target),
        }
        for name, attack in classes.items():
            got = await attack()
            table[name] = Tally(tried=len(got), answers=Counter(got))
        slow_tally = Tally()
        got = await slow(target, slow_tally)
        slow_tally.tried, slow_tally.answers = len(got), Counter(got)
        table["slow clients (idle, dripped head, stalled body, dripped body)"] = slow_tally

    asyncio.run(run())
    published = unauthenticated_published(stack, target.prefix)
    alive = httpx.get(f"{target.url}/healthz", timeout=10).status_code == 200
    metrics = httpx.get(f"{target.url}/metrics", timeout=10).text
    counted_5xx = sum(
        float(n) for n in re.findall(r'^bridge_requests_total\{.*status_class="5xx".*\} (\S+)$', metrics, re.M)
    )
    answered_5xx = sum(n for tally in table.values() for code, n in tally.answers.items() if code.startswith("5"))
    still = sum(tally.still_connected for tally in table.values())
    with capsys.disabled():
        print("\n\nhostile-input suite: real bridge serve, real broker")
        print(f"{'class':<82} {'tried':>5}  answers")
        for name, tally in table.items():
            codes = ", ".join(f"{code}: {n}" for code, n in sorted(tally.answers.items()))
            print(f"{name:<82} {tally.tried:>5}  {codes}")
        print(f"5xx answered: {answered_5xx} (counted in metrics: {counted_5xx:g})  must be 0")
        print(f"unauthenticated records published: {published}  must be 0")
        print(f"slow clients still connected after the deadline + {DEADLINE_GRACE:g} s: {still}  must be 0")
        print(f"process alive afterwards: {alive}\n")
    assert (answered_5xx, counted_5xx, published, still, alive) == (0, 0, 0, 0, True)
    lines = target.log.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["level"] for line in lines]  # one JSON object per line
    for secret in (SECRET, SVIX_SECRET, "whsec_forged", "hook:guess", MARKER, "user@example.com"):
        assert not any(secret in line for line in lines), secret  # no secret, body or address in the logs
    assert any("u***@example.com" in line for line in lines)  # the address was logged, masked
    expected = {
        "unauthenticated (unsigned, forged, stale, wrong key, bad Basic/Bearer)": {"401": 7},
        "oversized (body, one 1 MB header, 200 headers)": {"413": 1, "431": 2},
    }
    for name, counts in expected.items():
        assert dict(table[name].answers) == counts, (name, table[name].answers)
    pathological = table["signed pathological JSON (nesting, digits, dates, surrogates, types, 1.02 MB)"]
    assert dict(pathological.answers) == {"200": 9}
