"""The `bridge` command: the webhook-to-Kafka bridge's server and its tools, one parser for all."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml
from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, KafkaError, KafkaException, Message
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from bridge import asyncapi, catalog, config, dlq, logs, reader, server, strimzi, topics, version
from bridge.app import create_app, registry_client
from bridge.avro import SCHEMAS_DIR, UNREACHABLE, Encoder, EventSchema, subject_for
from bridge.consumers import CONSUMERS
from bridge.consumers import commands as consumers
from bridge.consumers.framework import Query
from bridge.errors import BridgeError, ConfigError
from bridge.events import DEAD_LETTER, topic_for
from bridge.providers import PROVIDERS
from bridge.publisher import client_config
from bridge.settings import CONFIG_ENV, RateLimit
from bridge.workers import liveness, supervise

log = logging.getLogger("bridge")
LOG_FORMAT_ENV = "BRIDGE_LOG_FORMAT"
EXIT_CONFIG = 2
# Commands that work with part of the configuration: a `${VAR}` or `${file:}` they cannot resolve (a webhook secret
# mounted only in the pod, say) is a warning, not an error. A command that uses such a value fails where it does.
PARTIAL_CONFIG = frozenset(
    {
        "consume",
        "dlq list",
        "dlq show",
        "register-schemas",
        *(f"schemas {action}" for action in ("list", "show", "check", "register", "export")),
        *(f"topics {action}" for action in ("plan", "apply", "render")),
    }
)
EXIT_FAILED = 1
EXIT_INCOMPATIBLE = 3  # schemas check: a local schema the registry would refuse
EXIT_CHANGES = 3  # `topics plan`: the cluster's topics differ from the configuration (0: they do not)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logs.configure(args.log_level, args.log_format)
    if not args.needs_config:
        return int(args.command(None, args))
    unresolved: list[str] | None = [] if args.partial_config else None
    try:
        settings = config.load(args.config, unresolved=unresolved)
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    for problem in unresolved or []:
        print(f"configuration: {problem}; left unresolved (this command may not need it)", file=sys.stderr)
    return int(args.command(settings, args))


def config_schema(settings: config.Settings | None, args: argparse.Namespace) -> int:
    """The JSON Schema of the configuration file, every provider's options included."""
    print(config.json_schema())
    return 0


def serve(settings: config.Settings, args: argparse.Namespace) -> int:
    host, port = args.host or settings.server.host, args.port or settings.server.port
    workers = args.workers or settings.server.workers
    if port == settings.server.management_port:
        print(f"--port {port} is server.management_port too; give the management endpoints their own", file=sys.stderr)
        return EXIT_CONFIG
    log_level = args.log_level.lower()
    if workers == 1:  # this process serves: no supervisor, no fork
        _serve_app(settings, host, port, log_level)
        return 0
    if not sys.platform.startswith("linux"):
        print("serve --workers above 1 needs Linux (fork, SO_REUSEPORT, sigtimedwait)", file=sys.stderr)
        return EXIT_CONFIG
    logs.configure(args.log_level, args.log_format, pid=True)  # which worker wrote a line
    mine = per_worker(settings, workers)

    def work(listener: socket.socket, started: Callable[[], None]) -> None:
        _serve_app(mine, host, port, log_level, listener, started)

    supervise(work, settings.server, host, port, workers)
    return 0


def _serve_app(
    settings: config.Settings,
    host: str,
    port: int,
    log_level: str,
    listener: socket.socket | None = None,
    started: Callable[[], None] | None = None,
) -> None:
    # In a worker this runs after the fork: the producer's threads and the registry client are its own.
    app = create_app(settings)
    metrics = app.metrics
    management = None
    if app.management is not None and settings.server.management_port is not None:
        management = server.Management(
            app.management,
            settings.server.management_host or host,
            settings.server.management_port,
            listener is not None,
        )
    server.serve(
        app,
        settings.server,
        host=host,
        port=port,
        log_level=log_level,
        on_refused=lambda reason: metrics.connections_refused.labels(reason).inc(),
        sockets=None if listener is None else [listener],
        on_started=started,
        # One worker among several watches its own liveness: no orchestrator's probe can single it out.
        watch=None if listener is None else liveness(app.management or app),
        management=management,
    )


def per_worker(settings: config.Settings, workers: int) -> config.Settings:
    """The settings each of `workers` processes runs with: every source's rate limit divided among them, so
    the configured rate stays the bridge's whole (a sender whose connections all reach one worker gets that
    worker's share). The rest of the limits are per process (README, "Several workers")."""
    if workers == 1:
        return settings
    sources = [
        source
        if source.rate_limit is None
        else source.model_copy(
            update={
                "rate_limit": RateLimit(
                    per_second=source.rate_limit.per_second / workers,
                    burst=max(1, math.ceil(source.rate_limit.burst / workers)),
                )
            }
        )
        for source in settings.sources
    ]
    return settings.model_copy(update={"sources": sources})


def check_config(settings: config.Settings, args: argparse.Namespace) -> int:
    for source in settings.sources:
        print(
            f"source {source.name}: provider {source.provider}, {len(source.secrets)} secret(s), "
            f"POST /webhooks/{source.name}"
        )
    print(f"topics: {topic_for(settings.topics.prefix, '<event type>')} (all of them: bridge topics plan)")
    own = settings.server
    probes = f"{own.management_host or own.host}:{own.management_port}" if own.management_port else "it"
    print(f"serving on {own.host}:{own.port}; /healthz, /readyz and /metrics on {probes}")
    return 0


def register_schemas(settings: config.Settings, args: argparse.Namespace) -> int:
    """`schemas register`, and its alias `register-schemas`."""
    try:
        with registry_client(settings) as client:
            ids = Encoder(client, _local_schemas(args), settings.topics.prefix).register(auto_register=True)
    except (BridgeError, ConfigError, SchemaRegistryError) as error:  # the registry's 409: a schema it refuses
        return _failed("registration", error)
    for event_type, schema_id in ids.items():
        print(f"{subject_for(topic_for(settings.topics.prefix, event_type))}: id {schema_id}")
    return 0


def send_test(settings: config.Settings, args: argparse.Namespace) -> int:
    """Sign a fresh example delivery with the source's own credentials and POST it, as the provider would."""
    source = settings.source(args.source) if args.source else settings.sources[0]
    if source is None:
        print(
            f"no source named {args.source!r}; configured: {', '.join(s.name for s in settings.sources)}",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    sender = PROVIDERS[source.provider].sender()
    now = time.time()
    try:
        body, headers = sender.sign(sender.example(args.event, datetime.fromtimestamp(now, UTC)), source, now)
    except ValueError as error:  # no such event, or the source's credentials cannot sign one
        print(f"cannot send a test {args.event} for {source.provider}: {error}", file=sys.stderr)
        return EXIT_CONFIG
    url = f"{args.url or f'http://{settings.server.host}:{settings.server.port}'}/webhooks/{source.name}"
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=35)
    except httpx.HTTPError as error:
        print(f"POST {url} failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(f"POST {url} ({args.event}) -> {response.status_code} {response.text}")
    return 0 if response.is_success else EXIT_FAILED


def consume(settings: config.Settings, args: argparse.Namespace) -> int:
    """Print a topic's records as JSON lines (or `--pretty` blocks), values decoded through the registry.

    What `kcat -s value=avro -r <registry>` shows, for machines whose kcat lacks Avro support.
    """
    consumer = reader.consumer(settings.kafka, f"bridge-consume-{uuid.uuid4()}")
    printed = 0
    try:
        with registry_client(settings) as registry:
            deserializer = AvroDeserializer(registry)
            follow = args.follow or args.from_end
            for record in reader.records(consumer, args.topic, follow=follow, from_end=args.from_end):
                seen = describe(record, deserializer)
                print(pretty(seen) if args.pretty else json.dumps(seen, default=_iso, ensure_ascii=False), flush=True)
                printed += 1
                if printed == args.limit:
                    break
    except reader.MissingTopic as error:
        print(f"consume failed: {error} (bridge topics plan lists the topics the bridge writes)", file=sys.stderr)
        return EXIT_FAILED
    except KafkaException as error:
        print(f"consume failed: {kafka_problem(settings, error)}", file=sys.stderr)
        return EXIT_FAILED
    except (*UNREACHABLE, SchemaRegistryError) as error:
        print(f"consume failed: schema registry {settings.schema_registry.url}: {error}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        consumer.close()
    return 0


def kafka_problem(settings: config.Settings, error: KafkaException) -> str:
    """librdkafka's reason, and where the command looked: "Failed to get metadata: Local: Broker transport
    failure" alone does not say which cluster."""
    reason = error.args[0].str() if error.args and isinstance(error.args[0], KafkaError) else str(error)
    return f"{reason} (kafka.bootstrap_servers {settings.kafka.bootstrap_servers})"


def pretty(record: dict[str, object]) -> str:
    """One record for people: where it is, its key and headers on a line each, then the value indented."""
    headers = record["headers"]
    assert isinstance(headers, dict)
    value = record["value"]
    shown = value if isinstance(value, str) else json.dumps(value, default=_iso, ensure_ascii=False, indent=2)
    return "\n".join(
        [
            f"{record['topic']} partition {record['partition']} offset {record['offset']}  {record['timestamp']}",
            f"  key: {record['key']}",
            "  headers: " + ", ".join(f"{name}={text}" for name, text in headers.items()),
            *(f"  {line}" for line in shown.splitlines()),
            "",
        ]
    )


def dlq_list(settings: config.Settings, args: argparse.Namespace) -> int:
    """One line per dead letter: position, received-at, source, provider, reason."""
    return _each_dead_letter(settings, _selection(args), lambda item: print(dlq.line(item)))


def dlq_show(settings: config.Settings, args: argparse.Namespace) -> int:
    """One dead letter, whole: headers and body, as JSON."""
    found: list[dlq.Entry] = []
    wanted = args.position if ":" in args.position else f"0:{args.position}"  # a bare offset: partition 0
    _each_dead_letter(settings, dlq.Selection(), lambda item: found.append(item) if item.position == wanted else None)
    if not found:
        print(f"no record at {args.position} in {dlq.dead_letter_topic(settings)}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(dlq.whole(found[0]), indent=2, ensure_ascii=False))
    return 0


def dlq_replay(settings: config.Settings, args: argparse.Namespace) -> int:
    """Replay the selected dead letters through today's pipeline; a second run of the same selection does nothing."""
    selection = _selection(args)
    group = args.group or selection.group(settings.topics.prefix)
    try:
        report = asyncio.run(dlq.replay(settings, selection, group))
    except (BridgeError, KafkaException, reader.MissingTopic) as error:  # nothing was committed past it
        print(f"replay stopped: {error}; run it again later (consumer group {group})", file=sys.stderr)
        return EXIT_FAILED
    for outcome, lines in sorted(report.outcomes.items()):
        for text in lines:
            print(f"{outcome}  {text}")
    summary = ", ".join(f"{outcome}: {len(lines)}" for outcome, lines in sorted(report.outcomes.items()))
    print(f"replayed with consumer group {group}: {summary or 'nothing new'}")
    return 0


def consumer_run(settings: config.Settings, args: argparse.Namespace) -> int:
    """Run a reference consumer until SIGTERM, or until it has caught up with the end offsets seen at start."""
    request = consumers.RunRequest(
        name=args.name,
        store=args.store,
        from_beginning=args.from_beginning,
        until_caught_up=args.until_caught_up,
        http_host=args.http_host,
        http_port=args.http_port,
    )
    try:
        summary, store = consumers.run(settings, request)
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    except (KafkaException, consumers.Failed, OSError) as error:
        print(f"consumer {args.name} stopped: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(
        f"consumer {args.name}: {summary.processed} processed, {summary.duplicates} duplicates, "
        f"{summary.dead_letters} dead letters, {summary.batches} batches (store {store})"
    )
    return 0


def consumer_report(settings: config.Settings, args: argparse.Namespace) -> int:
    """Print a reference consumer's store: a table per section, or JSON."""
    try:
        sections = consumers.report(settings, args.name, args.store, Query(address=args.address))
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    except consumers.Failed as error:
        print(f"report failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(consumers.render(sections, args.format))
    return 0


def _each_dead_letter(
    settings: config.Settings, selection: dlq.Selection, handle: Callable[[dlq.Entry], object]
) -> int:
    source = reader.consumer(settings.kafka, f"bridge-dlq-{uuid.uuid4()}")
    try:
        for record in reader.records(source, dlq.dead_letter_topic(settings)):
            item = dlq.entry(record)
            if item.letter is None or selection.matches(item.letter):
                handle(item)
    except KafkaException as error:
        print(f"reading {dlq.dead_letter_topic(settings)} failed: {kafka_problem(settings, error)}", file=sys.stderr)
        return EXIT_FAILED
    except reader.MissingTopic as error:
        print(f"reading {dlq.dead_letter_topic(settings)} failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        source.close()
    return 0


def _selection(args: argparse.Namespace) -> dlq.Selection:
    return dlq.Selection(source=args.source, reason=args.reason, since=args.since, until=args.until)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone; add Z or an offset")
    return moment


def describe(record: Message, deserializer: AvroDeserializer) -> dict[str, object]:
    topic, raw = record.topic() or "", record.value() or b""
    avro = isinstance(raw, bytes) and raw[:1] == b"\x00" and not topic.endswith(f".{DEAD_LETTER}")
    return {
        "topic": topic,
        "partition": record.partition(),
        "offset": record.offset(),
        "timestamp": _timestamp(record),
        "key": _text(record.key()),
        "headers": {name: _text(value) for name, value in list(record.headers() or [])},
        "value": deserializer(raw, SerializationContext(topic, MessageField.VALUE)) if avro else _text(raw),
    }


def _timestamp(record: Message) -> str | None:
    kind, milliseconds = record.timestamp()
    if kind == TIMESTAMP_NOT_AVAILABLE:
        return None
    return datetime.fromtimestamp(milliseconds / 1000, UTC).isoformat(timespec="milliseconds")


def _text(value: str | bytes | None) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value or ""


def _iso(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _global_options(parser: argparse.ArgumentParser, defaults: bool) -> None:
    """--config, --log-level and --log-format, on `bridge` itself and on every command: `bridge --config f
    serve` and `bridge serve --config f` are the same. A command's copies have no defaults of their own,
    so they override `bridge`'s only when given."""

    def default(value: str | None) -> str | None:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument("--config", default=default(None), help=f"YAML configuration file (default: ${CONFIG_ENV})")
    parser.add_argument("--log-level", default=default("INFO"), choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument(
        "--log-format",
        default=default(os.environ.get(LOG_FORMAT_ENV, "text")),
        choices=["text", "json"],
        help=f"json: one object per line, for log shippers (default: ${LOG_FORMAT_ENV}, else text)",
    )


def _commands_of(parser: argparse.ArgumentParser, prefix: str = "") -> list[tuple[str, str, argparse.ArgumentParser]]:
    """Every command below `parser`, nested ones (dlq list, consumer run) included: its full name, its help
    and its parser."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, command in action.choices.items():
                found += [(prefix + name, helps[name], command), *_commands_of(command, f"{prefix}{name} ")]
    return found


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bridge", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _global_options(parser, defaults=True)
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    parser.set_defaults(needs_config=True, partial_config=False)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser("serve", help="run the HTTP server")
    run.add_argument("--host", help="bind address (default: server.host)")
    run.add_argument("--port", type=int, help="port (default: server.port)")
    run.add_argument(
        "--workers",
        type=_positive,
        help="processes serving the port, each with its own Kafka producer (default: server.workers, 1); "
        "Linux only above 1",
    )
    run.set_defaults(command=serve)

    commands.add_parser("check-config", help="validate the configuration and exit").set_defaults(command=check_config)
    commands.add_parser(
        "config-schema", help="print the JSON Schema of the configuration (no --config needed)"
    ).set_defaults(command=config_schema, needs_config=False)  # describes every configuration, so needs none
    commands.add_parser(
        "register-schemas", help="register every event schema and exit (an alias of `schemas register`)"
    ).set_defaults(command=register_schemas)
    _schemas_commands(commands)

    test = commands.add_parser("send-test", help="sign an example delivery and POST it to a running bridge")
    test.add_argument("--source", help="source name (default: the first configured)")
    test.add_argument("--event", default="message.delivered", help="event type (default: message.delivered)")
    test.add_argument("--url", help="bridge base URL (default: from server.host/port)")
    test.set_defaults(command=send_test)

    letters = commands.add_parser("dlq", help="list, show and replay dead letters").add_subparsers(
        required=True, metavar="ACTION"
    )
    listing = letters.add_parser(
        "list", help="one line per dead letter: position, received-at, source, provider, reason"
    )
    replaying = letters.add_parser("replay", help="run dead letters through today's pipeline; publish what now works")
    for action in (listing, replaying):
        action.add_argument("--source", help="only this source")
        action.add_argument("--reason", help="only reasons containing this text (case-insensitive)")
        action.add_argument("--since", type=_moment, help="received at or after (ISO 8601 with a zone)")
        action.add_argument("--until", type=_moment, help="received at or before (ISO 8601 with a zone)")
    listing.set_defaults(command=dlq_list)
    replaying.add_argument("--group", help="consumer group tracking progress (default: one per selection)")
    replaying.set_defaults(command=dlq_replay)
    showing = letters.add_parser("show", help="one dead letter, whole, as JSON")
    showing.add_argument("position", help="PARTITION:OFFSET as `dlq list` prints it, or OFFSET (partition 0)")
    showing.set_defaults(command=dlq_show)

    read = commands.add_parser("consume", help="print a topic's records, Avro values decoded via the registry")
    read.add_argument("topic", help="e.g. webhooks.message.delivered or webhooks.dead-letter")
    read.add_argument("--follow", action="store_true", help="keep waiting for new records")
    read.add_argument(
        "--from-end", action="store_true", help="only records written from now on (waits for them, as --follow)"
    )
    read.add_argument("--limit", type=_positive, help="stop after this many records")
    read.add_argument("--pretty", action="store_true", help="a readable block per record instead of JSON lines")
    read.set_defaults(command=consume)
    _consumer_commands(commands)
    _topics_commands(commands)
    every = _commands_of(parser)
    for name, _, command in every:
        _global_options(command, defaults=False)
        if name in PARTIAL_CONFIG:
            command.set_defaults(partial_config=True)
    width = max(len(name) for name, _, _ in every)
    parser.epilog = "every command (`bridge COMMAND --help` for its options):\n" + "\n".join(
        f"  {name:<{width}}  {text}" for name, text, _ in every
    )
    return parser


def _consumer_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = commands.add_parser("consumer", help="reference consumers: suppression, analytics, billing").add_subparsers(
        required=True, metavar="ACTION"
    )
    running = group.add_parser("run", help="consume, store, commit; until SIGTERM or --until-caught-up")
    reporting = group.add_parser("report", help="print what a consumer's store holds")
    for action in (running, reporting):
        action.add_argument("name", choices=sorted(CONSUMERS), help="which consumer")
        action.add_argument(
            "--store", help="store URL: sqlite:///path/file.db or postgresql://... (default: consumers)"
        )
    running.add_argument(
        "--from-beginning", action="store_true", help="reset the group to the earliest offsets (a rebuild)"
    )
    running.add_argument(
        "--until-caught-up", action="store_true", help="stop once the end offsets seen at start are processed"
    )
    running.add_argument("--http-port", type=_positive, help="suppression only: serve GET /suppressions/{address}")
    running.add_argument("--http-host", default="127.0.0.1", help="bind address of --http-port (default: 127.0.0.1)")
    running.set_defaults(command=consumer_run)
    reporting.add_argument("--format", choices=consumers.FORMATS, default="table", help="table (default) or json")
    reporting.add_argument("--address", help="suppression only: the entry for one address")
    reporting.set_defaults(command=consumer_report)


def schemas_list(settings: config.Settings, args: argparse.Namespace) -> int:
    """Every subject the bridge writes to: its latest registered version and id, and whether schemas/ matches it."""
    try:
        with registry_client(settings) as client:
            for subject in catalog.subjects(settings.topics.prefix, _local_schemas(args)):
                found = catalog.registered(client, subject.name)
                print(f"{subject.name}: {_listed(subject, found)}")
    except (BridgeError, ConfigError) as error:
        return _failed("schemas list", error)
    return 0


def _listed(subject: catalog.Subject, found: catalog.Registered | None) -> str:
    if found is None:
        return "not registered"
    same = "matches" if catalog.matches(subject.local, found) else "differs (see `bridge schemas check`)"
    return f"version {found.version}, id {found.schema_id}, local schema {same}"


def schemas_show(settings: config.Settings, args: argparse.Namespace) -> int:
    """One subject's schema, indented: the registered one (latest or --version), or with --local the file's."""
    try:
        subject = catalog.subject_of(settings.topics.prefix, args.target)
        if args.local:
            mine = {entry.name: entry for entry in catalog.subjects(settings.topics.prefix, _local_schemas(args))}
            if subject not in mine:
                print(f"{subject}: no local schema in {args.schemas or SCHEMAS_DIR}", file=sys.stderr)
                return EXIT_CONFIG
            print(catalog.indented(mine[subject].local.text))
            return 0
        with registry_client(settings) as client:
            found = catalog.registered(client, subject, args.version)
    except (BridgeError, ConfigError) as error:
        return _failed("schemas show", error)
    if found is None:
        which = f"version {args.version} of {subject}" if args.version else subject
        print(f"{which}: not registered", file=sys.stderr)
        return EXIT_FAILED
    print(catalog.indented(found.text))
    return 0


def schemas_check(settings: config.Settings, args: argparse.Namespace) -> int:
    """Whether the registry would take each local schema as the next version; a field-level diff of each."""
    try:
        with registry_client(settings) as client:
            verdicts = [
                catalog.check(client, subject)
                for subject in catalog.subjects(settings.topics.prefix, _local_schemas(args))
            ]
    except (BridgeError, ConfigError) as error:
        return _failed("schemas check", error)
    for verdict in verdicts:
        print("\n".join(verdict.lines()))
    refused = [verdict.subject for verdict in verdicts if not verdict.compatible]
    if refused:
        print(f"incompatible: {', '.join(refused)}", file=sys.stderr)
        return EXIT_INCOMPATIBLE
    print(f"all {len(verdicts)} schemas compatible")
    return 0


def schemas_export(settings: config.Settings, args: argparse.Namespace) -> int:
    """<subject>.avsc for every local schema, and asyncapi.yaml describing every topic."""
    try:
        schemas = _local_schemas(args)
    except ConfigError as error:
        return _failed("schemas export", error)
    args.out.mkdir(parents=True, exist_ok=True)
    for subject in catalog.subjects(settings.topics.prefix, schemas):
        (args.out / f"{subject.name}.avsc").write_text(catalog.indented(subject.local.text) + "\n", encoding="utf-8")
    described = asyncapi.Topics(
        prefix=settings.topics.prefix,
        schemas=schemas,
        version=version(),
        bootstrap_servers=settings.kafka.bootstrap_servers,
        secure=settings.kafka.protocol() != "PLAINTEXT",
        max_message_bytes={spec.name: int(spec.config["max.message.bytes"]) for spec in topics.topic_specs(settings)},
    )
    document = args.out / "asyncapi.yaml"
    document.write_text(_yaml([asyncapi.document(described)]), encoding="utf-8")
    print(f"wrote {len(schemas)} schemas and {document}")
    return 0


def _yaml(documents: list[Any], *, explicit_start: bool = False) -> str:
    """YAML documents with every repeated value written out: a person reading a resource or the contract
    should not have to follow &id001/*id001 aliases to a value first written elsewhere."""
    return yaml.dump_all(
        documents, Dumper=_NoAliases, sort_keys=False, allow_unicode=True, explicit_start=explicit_start
    )


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _failed(command: str, error: Exception) -> int:
    print(f"{command} failed: {error}", file=sys.stderr)
    return EXIT_CONFIG if isinstance(error, ConfigError) else EXIT_FAILED


def _local_schemas(args: argparse.Namespace) -> dict[str, EventSchema]:
    return catalog.local(getattr(args, "schemas", None) or SCHEMAS_DIR)


def _schemas_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = commands.add_parser(
        "schemas", help="list, show, check, register and export the event schemas (schemas as code)"
    ).add_subparsers(required=True, metavar="ACTION")
    listing = group.add_parser("list", help="every subject: registered version and id, and whether schemas/ matches")
    showing = group.add_parser("show", help="a subject's schema, pretty-printed (the registered latest by default)")
    checking = group.add_parser(
        "check", help=f"is every local schema compatible with the registered one? exit {EXIT_INCOMPATIBLE} if not"
    )
    registering = group.add_parser("register", help="register every event schema and exit (as register-schemas)")
    exporting = group.add_parser("export", help="write <subject>.avsc files and an AsyncAPI 3.0 asyncapi.yaml")
    for action in (listing, showing, checking, registering, exporting):
        action.add_argument(
            "--schemas", type=Path, help="directory of <event type>.avsc files (default: the bridge's own schemas/)"
        )
    showing.add_argument(
        "target", help="an event type (message.delivered) or a subject (webhooks.message.delivered-value)"
    )
    showing.add_argument("--version", type=_positive, help="this registered version (default: the latest)")
    showing.add_argument("--local", action="store_true", help="the local schema instead of the registered one")
    exporting.add_argument(
        "--out", type=Path, default=Path(), help="directory to write to, created if missing (default: the current one)"
    )
    listing.set_defaults(command=schemas_list)
    showing.set_defaults(command=schemas_show)
    checking.set_defaults(command=schemas_check)
    registering.set_defaults(command=register_schemas)
    exporting.set_defaults(command=schemas_export)


def topics_plan(settings: config.Settings, args: argparse.Namespace) -> int:
    """What `topics apply` would do, changing nothing: 0 if nothing, EXIT_CHANGES if something."""
    return _with_plan("topics plan", settings, lambda admin, result: EXIT_CHANGES if result.pending else 0)


def topics_apply(settings: config.Settings, args: argparse.Namespace) -> int:
    """Create, alter and grow the topics as planned; 1 if anything failed or needs a manual step."""

    def apply(admin: AdminClient, result: topics.Plan) -> int:
        applied = topics.apply(admin, result)
        for line in applied.done:
            print(f"done: {line}")
        for line in applied.failed:
            print(f"failed: {line}", file=sys.stderr)
        for manual in result.manual:
            print(f"not done: {manual.topic}: {manual.reason}", file=sys.stderr)
        return EXIT_FAILED if applied.failed or result.manual else 0

    return _with_plan("topics apply", settings, apply)


def _with_plan(command: str, settings: config.Settings, then: Callable[[AdminClient, topics.Plan], int]) -> int:
    """The cluster's topics against the configuration, printed, then `then` (nothing more, or apply)."""
    try:
        admin = _admin(settings)
        result = topics.plan(topics.topic_specs(settings), topics.describe(admin, topics.all_topics(settings)))
        print("\n".join(topics.render(result, topics.broker_defaults(admin) if result.pending else {})))
        return then(admin, result)
    except KafkaException as error:
        print(f"{command} failed: {kafka_problem(settings, error)}", file=sys.stderr)
    except topics.TopicUnreadable as error:
        print(f"{command} failed: {error}", file=sys.stderr)
    return EXIT_FAILED


def topics_render(settings: config.Settings, args: argparse.Namespace) -> int:
    """Strimzi KafkaTopic resources for every topic, and the bridge's KafkaUser, as YAML documents."""
    target = strimzi.Target(
        cluster=args.cluster,
        user=args.user or strimzi.user_for(settings.kafka),
        authentication=args.authentication or strimzi.authentication_for(settings.kafka),
        namespace=args.namespace,
        prefix_acl=args.prefix_acl,
    )
    try:
        documents = strimzi.documents(topics.topic_specs(settings), settings.topics, target)
    except ValueError as error:
        print(f"cannot render: {error}", file=sys.stderr)
        return EXIT_CONFIG
    print("# bridge topics render --strimzi: the topics the bridge writes, and its user (kafka.strimzi.io/v1beta2)")
    # max.message.bytes is the value a topic is created with; `topics apply` never lowers a larger one.
    print(_yaml(documents, explicit_start=True), end="")
    return 0


def _admin(settings: config.Settings) -> AdminClient:
    """An admin client with the producer's address, TLS and SASL settings; librdkafka's lines through the
    bridge's logger, warnings and worse (its informational ones at exit say nothing to a person)."""
    shared = client_config({"bootstrap.servers": settings.kafka.bootstrap_servers, **settings.kafka.producer})
    extra: dict[str, Any] = {"logger": logs.kafka_logger(), "log_level": 4}
    return AdminClient({**shared, **extra})


def _topics_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = commands.add_parser(
        "topics", help="topics as code: plan, apply, or render them (and the bridge's user) for Strimzi"
    ).add_subparsers(required=True, metavar="ACTION")
    group.add_parser(
        "plan", help=f"show what apply would change, changing nothing (exit 0: nothing; {EXIT_CHANGES}: changes)"
    ).set_defaults(command=topics_plan)
    group.add_parser("apply", help="create, alter and grow the topics as configured").set_defaults(command=topics_apply)
    rendering = group.add_parser("render", help="print KafkaTopic resources and a KafkaUser with the bridge's ACLs")
    formats = rendering.add_mutually_exclusive_group(required=True)
    formats.add_argument("--strimzi", action="store_true", help="Strimzi custom resources (kafka.strimzi.io/v1beta2)")
    rendering.add_argument(
        "--cluster",
        default=strimzi.DEFAULT_CLUSTER,
        help=f"the Kafka resource's name, label strimzi.io/cluster (default: {strimzi.DEFAULT_CLUSTER}, as Strimzi's "
        "examples)",
    )
    rendering.add_argument("--namespace", help="metadata.namespace of every resource (default: none)")
    rendering.add_argument(
        "--user", help=f"the KafkaUser's name (default: kafka.sasl.username, else {strimzi.DEFAULT_USER})"
    )
    rendering.add_argument(
        "--authentication",
        choices=strimzi.AUTHENTICATIONS,
        help="the KafkaUser's authentication (default: tls with a kafka.tls client certificate, else scram-sha-512)",
    )
    rendering.add_argument(
        "--prefix-acl", action="store_true", help="one ACL on every topic starting with '<prefix>.', not one per topic"
    )
    rendering.set_defaults(command=topics_render)
