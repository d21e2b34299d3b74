"""Schema registration by several processes at once (workers, replicas) on a new prefix, on the real registry.

Apicurio answers the loser of a concurrent compatibility-rule creation 409 "already exists"; before the
encoder tried once more, that process stayed unready for good.
"""

from __future__ import annotations

import threading
import uuid

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from bridge.avro import Encoder, load_schemas
from bridge.events import EVENT_TYPES
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

PROCESSES = 4
ROUNDS = 3


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_concurrent_registration_of_a_new_prefix_succeeds_everywhere(stack: Stack, round_: int) -> None:
    prefix = f"it-race-{uuid.uuid4().hex[:8]}"
    schemas = load_schemas()
    results: list[dict[str, int] | BaseException] = []
    start = threading.Barrier(PROCESSES)

    def register() -> None:
        with SchemaRegistryClient({"url": stack.registry_url, "timeout": 10}) as client:
            encoder = Encoder(client, schemas, prefix)
            start.wait()
            try:
                results.append(encoder.register())
            except BaseException as error:  # noqa: BLE001 - collected and asserted on below
                results.append(error)

    threads = [threading.Thread(target=register) for _ in range(PROCESSES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [result for result in results if isinstance(result, BaseException)] == []
    ids = [result for result in results if isinstance(result, dict)]
    assert len(ids) == PROCESSES and all(len(found) == len(EVENT_TYPES) for found in ids)
    assert all(found == ids[0] for found in ids)  # the same schema gets the same id, whoever registered it
