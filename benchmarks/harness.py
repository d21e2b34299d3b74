"""The bridge against the bare HTTP ceiling and a bare producer, on the local stack, under wrk.

    make bench                     # python -m benchmarks: about 3 minutes on the local stack
    python -m benchmarks --smoke   # CI: one short round, well under a minute

Targets, each its own process on the same uvicorn settings (uvloop, httptools, access log off):
  ceiling    bare Starlette: POST /webhooks/{source} reads the body and answers 200 JSON
  bridge     `python -m bridge serve`, one Lettermint source (a fresh topic prefix per run)
  producer   bare Starlette + confluent-kafka: one record per POST (acks=all, idempotence, the bridge's linger),
             answered 200 after its delivery report
  bridge-Nw  `bridge serve --workers N`, where the bridge has that option

Load: wrk -t1 -c32 (keep-alive) cycling through pre-signed, unique Lettermint deliveries (fresh for every
bridge run: the bridge answers a repeat "duplicate" without publishing). Phases: a warm-up per target, then
ROUNDS interleaved rounds of every target at saturation, then every target at fixed offered rates (half and
a quarter of the bridge's median saturation rate), paced in wrk's Lua delay() (see benchmarks/load.py: a
paced closed loop over 32 connections, without wrk2's coordinated-omission correction). Each run records
requests/s, latency percentiles, the server's CPU (utime+stime of its process tree, from /proc) and RSS,
and wrk's own CPU. At the end the records in Kafka are counted against the 2xx answers.

Results: <out>/<UTC timestamp>.json (every run, the summary, the machine), .md (the table) and .png (latency
against load).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException

from benchmarks import load, pipeline_cpu, procs, report, servers

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_KAFKA = "127.0.0.1:9092"
DEFAULT_REGISTRY = "http://127.0.0.1:8081/apis/ccompat/v7"
READY_TIMEOUT_SECONDS = 120
PAUSE_SECONDS = 0.5  # between runs: the last run's in-flight acks land before the next one starts
POOL_SIZE = 20_000  # requests cycled through by the targets that do not dedupe (ceiling, producer)
MAX_UNIQUE = 600_000  # at most this many fresh deliveries per bridge run (~400 MB of requests)
BRIDGE_CONFIG = """
kafka: {{bootstrap_servers: "{bootstrap}"}}
schema_registry: {{url: "{registry}"}}
topics: {{prefix: "{prefix}"}}
server: {{host: "127.0.0.1", port: {port}}}
sources: [{{name: {source}, provider: lettermint, secrets: ["${{{secret_env}}}"]}}]
"""
VERSIONS = ("starlette", "uvicorn", "uvloop", "httptools", "confluent-kafka", "fastavro", "orjson", "pydantic")


@dataclass
class Target:
    name: str
    server: procs.Server
    unique: bool  # needs fresh deliveries every run (the bridge dedupes)
    topics: list[str] = field(default_factory=list)  # where its records go, to count
    prefix: str | None = None  # a bridge's topic prefix: every topic under it is deleted at the end
    ok: int = 0  # 2xx answers over every run, warm-up and profile included
    repeats: int = 0  # requests that may have been sent twice (a wrapped request file)
    fastest: float = 0.0  # the best requests/s seen so far, to size the next request file


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--bootstrap",
        default=os.environ.get("BRIDGE_TEST_KAFKA", DEFAULT_KAFKA),
        help=f"Kafka bootstrap servers (default: $BRIDGE_TEST_KAFKA, else {DEFAULT_KAFKA})",
    )
    parser.add_argument(
        "--registry",
        default=os.environ.get("BRIDGE_TEST_REGISTRY", DEFAULT_REGISTRY),
        help=f"schema registry ccompat URL (default: $BRIDGE_TEST_REGISTRY, else {DEFAULT_REGISTRY})",
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved saturation rounds (default: 3)")
    parser.add_argument("--seconds", type=int, default=8, help="duration of each measured run (default: 8)")
    parser.add_argument("--warm-up", type=int, default=2, help="seconds of unmeasured load per target (default: 2)")
    parser.add_argument("--connections", type=int, default=32, help="wrk keep-alive connections (default: 32)")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="also measure `bridge serve --workers N` where the bridge has the option; 0: not (default: 2)",
    )
    parser.add_argument(
        "--fixed-rates",
        default="0.5,0.25",
        help="fixed offered rates, as fractions of the bridge's median saturation rate (default: 0.5,0.25)",
    )
    parser.add_argument(
        "--linger-ms",
        type=float,
        default=servers.LINGER_MS,
        help=f"the producer target's linger.ms (default: {servers.LINGER_MS}, the bridge's)",
    )
    parser.add_argument(
        "--bridge-log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="the bridge's --log-level (default: INFO, the bridge's own default: one line per delivery)",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the bridge during one extra saturation run")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results", help="results folder (default: bench/results)"
    )
    parser.add_argument(
        "--keep-topics", action="store_true", help="leave the run's topics in Kafka and its subjects in the registry"
    )
    parser.add_argument("--smoke", action="store_true", help="CI: 1 round of 2 s runs, 1 s warm-up, half rate only")
    args = parser.parse_args(argv)
    if args.smoke:
        args.rounds, args.seconds, args.warm_up, args.fixed_rates = 1, 2, 1, "0.5"
    try:
        args.fractions = [float(item) for item in args.fixed_rates.split(",") if item.strip()]
    except ValueError:
        parser.error(f"--fixed-rates: not a list of numbers: {args.fixed_rates!r}")
    if args.rounds < 1 or args.seconds < 1 or args.warm_up < 0 or args.connections < 1:
        parser.error("--rounds, --seconds and --connections must be positive, --warm-up not negative")
    return args


def bridge_has_workers() -> bool:
    result = subprocess.run(
        [sys.executable, "-m", "bridge", "serve", "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    return "--workers" in result.stdout


class Bench:
    def __init__(self, args: argparse.Namespace, folder: Path) -> None:
        self.args = args
        self.folder = folder
        self.run_id = uuid.uuid4().hex[:8]
        self.runs: list[report.Run] = []
        self.notes: list[str] = []
        self.targets: list[Target] = []  # those measured
        self.built: list[Target] = []  # every target started, for the clean-up
        self.pool: Path | None = None
        self.files = 0
        self.workers_available = bridge_has_workers() if args.workers > 0 else False

    # The targets

    def build_targets(self) -> None:
        python, folder = sys.executable, self.folder
        port = procs.free_port()
        self.targets.append(
            Target(
                "ceiling",
                procs.Server(
                    "ceiling",
                    [python, "-m", "benchmarks.servers", "ceiling", "--port", str(port)],
                    port,
                    folder / "ceiling.log",
                ),
                unique=False,
            )
        )
        self.targets.append(self._bridge("bridge", f"bench-{self.run_id}", []))
        port = procs.free_port()
        topic = f"bench-{self.run_id}-producer"
        command = [python, "-m", "benchmarks.servers", "producer", "--port", str(port)]
        command += ["--bootstrap", self.args.bootstrap, "--topic", topic, "--linger-ms", str(self.args.linger_ms)]
        self.targets.append(
            Target("producer", procs.Server("producer", command, port, folder / "producer.log"), False, topics=[topic])
        )
        if self.args.workers > 0:
            name = f"bridge-{self.args.workers}w"
            if self.workers_available:
                workers = self.args.workers
                self.targets.append(self._bridge(name, f"bench-{self.run_id}-{workers}w", ["--workers", str(workers)]))
            else:
                self.notes.append(f"{name}: not available (`bridge serve --help` has no --workers)")
        self.built = list(self.targets)

    def _bridge(self, name: str, prefix: str, extra: list[str]) -> Target:
        from bridge.events import topic_for

        port = procs.free_port()
        config = self.folder / f"{name}.yaml"
        config.write_text(
            BRIDGE_CONFIG.format(
                bootstrap=self.args.bootstrap,
                registry=self.args.registry,
                prefix=prefix,
                port=port,
                source=load.SOURCE,
                secret_env=pipeline_cpu.SECRET_ENV,
            )
        )
        level = self.args.bridge_log_level
        command = [sys.executable, "-m", "bridge", "--config", str(config), "--log-level", level, "serve"]
        server = procs.Server(
            name,
            [*command, "--host", "127.0.0.1", *extra],
            port,
            self.folder / f"{name}.log",
            env={pipeline_cpu.SECRET_ENV: load.SECRET},
        )
        return Target(name, server, unique=True, topics=[topic_for(prefix, load.EVENT)], prefix=prefix)

    def start(self) -> None:
        self.create_producer_topic()
        for target in self.targets:
            target.server.start()
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        for target in list(self.targets):
            try:
                target.server.wait_ready(deadline)
            except RuntimeError as error:
                if target.name in ("ceiling", "bridge", "producer"):
                    raise
                # The multi-worker variant is extra: without it the three-way comparison still stands.
                target.server.stop()
                self.targets.remove(target)
                self.notes.append(f"{target.name}: not available, it did not start: {error}")
                print(f"{target.name} did not start; going on without it", flush=True)

    def create_producer_topic(self) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

        topics = [topic for target in self.targets if not target.unique for topic in target.topics]
        if not topics:
            return
        admin = AdminClient(self.kafka_config())
        admin.list_topics(timeout=10)  # Kafka unreachable: KafkaException now, rather than a timeout later
        # -1: the broker's partitions and replication, as the bridge's own topics (topics.partitions: -1).
        for future in admin.create_topics([NewTopic(topic, num_partitions=-1) for topic in topics]).values():
            future.result(timeout=30)

    def stop(self) -> None:
        for target in self.built:
            try:
                code = target.server.stop()
            except Exception as error:  # noqa: BLE001 - stop the others regardless
                self.notes.append(f"{target.name}: stopping failed: {error}")
                continue
            if code not in (None, 0, -signal.SIGTERM):  # uvicorn.run dies of the SIGTERM it caught
                self.notes.append(f"{target.name}: exited with {code} on SIGTERM:\n{target.server.tail(10)}")

    def kafka_config(self) -> dict[str, Any]:
        # librdkafka's own lines (a purged queue on close, every failed connect) would land in the printed
        # report; what goes wrong is raised instead.
        return {"bootstrap.servers": self.args.bootstrap, "log_level": 2}

    # Runs

    def requests_for(self, target: Target, seconds: int, rate: float) -> Path:
        """The request file for one run: the shared pool, or fresh deliveries enough not to wrap."""
        if not target.unique:
            if self.pool is None:
                self.pool = load.write_requests(self.folder / "pool.bin", load.deliveries(POOL_SIZE))
            return self.pool
        expected = rate if rate > 0 else self.expected_rate(target)
        count = min(MAX_UNIQUE, math.ceil(expected * seconds * 1.5) + 2 * self.args.connections + 500)
        self.files += 1
        path = self.folder / f"unique-{self.files}.bin"
        for old in self.folder.glob("unique-*.bin"):
            old.unlink()
        return load.write_requests(path, load.deliveries(count))

    def expected_rate(self, target: Target) -> float:
        if target.fastest:
            return target.fastest
        # Not run yet: nothing is faster than the bare ceiling, times the processes serving.
        ceiling = next((t.fastest for t in self.targets if t.name == "ceiling" and t.fastest), 20_000.0)
        return ceiling * max(1, self.args.workers if target.name != "bridge" else 1)

    def run(
        self, target: Target, phase: str, seconds: int, rate: float = 0.0, **labels: Any
    ) -> tuple[report.Run, load.WrkResult]:
        requests = self.requests_for(target, seconds, rate)
        server = target.server
        pids = server.pids()
        cpu_before = procs.cpu_seconds(pids)
        name = f"{len(self.runs):03d}-{target.name}-{phase}"
        url = f"{server.url}/webhooks/{load.SOURCE}"
        result = load.run_wrk(url, requests, self.folder, name, seconds, self.args.connections, rate)
        pids = server.pids()
        cpu = procs.cpu_seconds(pids) - cpu_before
        if server.process is not None and server.process.poll() is not None:
            raise RuntimeError(f"{target.name} exited with {server.process.returncode}:\n{server.tail()}")
        rss = procs.rss_mib(pids)
        repeats = max(0, result.sent - result.pool) if target.unique else 0
        target.ok += result.ok
        target.repeats += repeats
        target.fastest = max(target.fastest, result.rate)
        if repeats:
            self.notes.append(
                f"{name}: the request file wrapped ({result.sent} sent, {result.pool} unique): up to {repeats} "
                "repeats answered duplicate, not published (counted out of the Kafka check)"
            )
        if result.socket_errors or result.errors["status"]:
            self.notes.append(f"{name}: errors {result.errors}")
        latency = {key: result.latency_us[key] / 1000 for key in ("p50", "p90", "p99", "p99.9", "max", "mean")}
        record: report.Run = {
            "target": target.name,
            "phase": phase,
            **labels,
            "seconds": seconds,
            "offered_per_s": rate or None,
            "requests": result.requests,
            "ok": result.ok,
            "requests_per_s": result.rate,
            "latency_ms": latency,
            "errors": result.errors,
            "cpu_s": cpu,
            "cpu_s_per_1k": cpu / result.requests * 1000 if result.requests else None,
            "requests_per_cpu_s": result.requests / cpu if cpu > 0 else None,
            "rss_mib": rss,
            "processes": len(pids),
            "wrk_cpu_s": result.wrk_cpu_s,
            "wrk_cpu_s_per_1k": result.wrk_cpu_s / result.requests * 1000 if result.requests else None,
            "pool": result.pool,
            "sent": result.sent,
            "wraps": result.wraps,
            "repeats": repeats,
        }
        self.runs.append(record)
        rate_text = f" at {rate:,.0f}/s offered" if rate else ""
        print(
            f"  {target.name:<10} {phase:<10}{rate_text}: {result.rate:>8,.0f} req/s  p50 {latency['p50']:.2f} ms  "
            f"p99 {latency['p99']:.2f} ms  CPU {cpu:.2f} s ({record['cpu_s_per_1k'] or 0:.3f} s/1k)  "
            f"RSS {rss:.0f} MiB  wrk {result.wrk_cpu_s:.2f} s",
            flush=True,
        )
        time.sleep(PAUSE_SECONDS)
        return record, result

    def load_phases(self) -> dict[str, Any]:
        args = self.args
        if args.warm_up:
            print(f"warm-up: {args.warm_up} s per target", flush=True)
            for target in self.targets:
                self.run(target, "warmup", args.warm_up)
        print(f"saturation: {args.rounds} interleaved round(s) of {args.seconds} s, c={args.connections}", flush=True)
        for round_ in range(args.rounds):
            # Round-robin, the starting target rotating, so drift and noise fall on every target alike.
            order = self.targets[round_ % len(self.targets) :] + self.targets[: round_ % len(self.targets)]
            for target in order:
                self.run(target, "saturation", args.seconds, round=round_ + 1)
        bridge_rates = [
            run["requests_per_s"] for run in self.runs if run["target"] == "bridge" and run["phase"] == "saturation"
        ]
        bridge_median = report.median(bridge_rates) or 0.0
        for fraction in args.fractions:
            rate = bridge_median * fraction
            if rate < 1:
                self.notes.append(f"fixed rate {fraction:g}: the bridge's saturation rate is {bridge_median:.0f}/s")
                continue
            print(f"fixed rate: {fraction:g} x the bridge's {bridge_median:,.0f}/s = {rate:,.0f}/s", flush=True)
            for target in self.targets:
                self.run(target, "fixed", args.seconds, rate, fraction=fraction)
        return {"bridge_median_per_s": bridge_median}

    def profile(self) -> dict[str, Any] | None:
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not Path(spy).exists():
            self.notes.append("profile skipped: py-spy not found on PATH or next to the venv's python")
            print("profile skipped: py-spy is not installed (pip install py-spy)", flush=True)
            return None
        bridge = next(target for target in self.targets if target.name == "bridge")
        raw = self.folder / "profile.txt"
        command = [spy, "record", "--format", "raw", "-d", str(self.args.seconds), "-p", str(bridge.server.pid)]
        print(f"profile: py-spy on the bridge (pid {bridge.server.pid}) during one more saturation run", flush=True)
        with (self.folder / "py-spy.log").open("wb") as output:
            spying = subprocess.Popen([*command, "-o", str(raw)], stdout=output, stderr=subprocess.STDOUT)
            try:
                time.sleep(0.5)  # attached before the load starts
                self.run(bridge, "profile", self.args.seconds)
                spying.wait(timeout=self.args.seconds + 30)
            finally:
                if spying.poll() is None:
                    spying.terminate()
                    spying.wait(10)
        if spying.returncode != 0 or not raw.exists():
            log = (self.folder / "py-spy.log").read_text(errors="replace")[-1000:]
            self.notes.append(f"profile failed: py-spy exited with {spying.returncode}: {log}")
            return None
        text = raw.read_text(errors="replace")
        top = report.profile_top(text)
        top["raw"] = text
        return top

    # Kafka

    def count_records(self) -> dict[str, Any]:
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer({**self.kafka_config(), "group.id": f"bench-count-{self.run_id}"})
        counts: dict[str, Any] = {}
        try:
            for target in self.targets:
                if not target.topics:
                    continue
                records = 0
                for topic in target.topics:
                    metadata_ = consumer.list_topics(topic, timeout=10).topics.get(topic)
                    for partition in metadata_.partitions if metadata_ is not None and not metadata_.error else {}:
                        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
                        records += high - low
                dead = self._dead_letters(consumer, target)
                expected = target.ok - target.repeats
                counts[target.name] = {
                    "topics": target.topics,
                    "records": records,
                    "ok_answers": target.ok,
                    "possible_repeats": target.repeats,
                    "shortfall": max(0, expected - records),
                    "extra": max(0, records - target.ok),
                    "dead_letters": dead,
                }
        finally:
            consumer.close()
        return counts

    def _dead_letters(self, consumer: Any, target: Target) -> int | None:
        from confluent_kafka import TopicPartition

        from bridge.events import DEAD_LETTER, topic_for

        if target.prefix is None:
            return None
        topic = topic_for(target.prefix, DEAD_LETTER)
        found = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if found is None or found.error:
            return 0
        total = 0
        for partition in found.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            total += high - low
        return int(total)

    def clean_up(self) -> None:
        """Delete the run's topics and its schema subjects (soft, then permanently), best effort."""
        for step in (self.delete_topics, self.delete_subjects):
            try:
                step()
            except Exception as error:  # noqa: BLE001 - leftovers are worth a note, not a failed run
                self.notes.append(f"clean-up: {step.__name__} failed: {error}")

    def delete_subjects(self) -> None:
        from confluent_kafka.schema_registry import SchemaRegistryClient
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        from bridge.avro import subject_for
        from bridge.events import EVENT_TYPES, topic_for

        prefixes = [target.prefix for target in self.built if target.prefix]
        if not prefixes:
            return
        failed = 0
        with SchemaRegistryClient({"url": self.args.registry, "timeout": 10}) as registry:
            for prefix in prefixes:
                for event_type in EVENT_TYPES:
                    subject = subject_for(topic_for(prefix, event_type))
                    try:
                        registry.delete_subject(subject)
                        registry.delete_subject(subject, permanent=True)
                    except SchemaRegistryError as error:
                        failed += error.http_status_code != 404  # never registered (the run failed early): fine
                    except Exception:  # noqa: BLE001 - the registry unreachable: leftovers, not a failed run
                        failed += 1
        if failed:
            self.notes.append(f"{failed} schema subject(s) of this run could not be deleted from the registry")

    def delete_topics(self) -> None:
        from confluent_kafka.admin import AdminClient

        admin = AdminClient(self.kafka_config())
        prefixes = [target.prefix + "." for target in self.built if target.prefix]
        existing = admin.list_topics(timeout=10).topics
        doomed = [t for t in existing if any(t.startswith(p) for p in prefixes)]
        doomed += [t for target in self.built if not target.unique for t in target.topics if t in existing]
        if not doomed:
            return
        for topic, future in admin.delete_topics(doomed, operation_timeout=30).items():
            try:
                future.result(timeout=40)
            except Exception as error:  # noqa: BLE001 - a leftover topic is not a failed benchmark
                self.notes.append(f"could not delete topic {topic}: {error}")


def machine(args: argparse.Namespace, workers_available: bool) -> dict[str, Any]:
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "loadavg": list(os.getloadavg()),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "wrk": load.wrk_version(),
        "versions": {},
        "bridge_serve_workers_option": workers_available,
        "git": _git(),
        "settings": {
            "rounds": args.rounds,
            "seconds": args.seconds,
            "warm_up": args.warm_up,
            "connections": args.connections,
            "wrk_threads": 1,
            "producer_linger_ms": args.linger_ms,
            "bridge_log_level": args.bridge_log_level,
            "fixed_rates": args.fractions,
            "bootstrap": args.bootstrap,
            "registry": args.registry,
            "smoke": args.smoke,
        },
    }
    for name in VERSIONS:
        with contextlib.suppress(metadata.PackageNotFoundError):
            info["versions"][name] = metadata.version(name)
    with contextlib.suppress(ImportError):
        import confluent_kafka

        info["versions"]["librdkafka"] = confluent_kafka.libversion()[0]
    return info


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def _git() -> dict[str, Any]:
    def git(*command: str) -> str:
        result = subprocess.run(["git", *command], capture_output=True, text=True, cwd=ROOT, timeout=10)
        return result.stdout.strip()

    with contextlib.suppress(OSError, subprocess.SubprocessError):
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    return {}


def markdown(
    stamp: str,
    info: dict[str, Any],
    summary: dict[str, Any],
    kafka: dict[str, Any],
    cpu: dict[str, Any],
    notes: list[str],
    args: argparse.Namespace,
) -> str:
    settings = info["settings"]
    commit = info["git"].get("commit", "?")[:12] + (" (dirty)" if info["git"].get("dirty") else "")
    lines = [
        f"# Benchmark {stamp}",
        "",
        f"commit {commit}; {info['nproc']} CPUs ({info['cpu']}), load {info['loadavg'][0]:.2f} before; "
        f"python {info['python']}; {info['wrk']}",
        f"wrk -t1 -c{settings['connections']} keep-alive, {settings['rounds']} interleaved round(s) of "
        f"{settings['seconds']} s at saturation (medians shown), then fixed offered rates paced in Lua "
        "(a closed loop over the connections, no coordinated-omission correction). "
        "CPU: utime+stime of the server's process tree. "
        f"Producer target: linger.ms {settings['producer_linger_ms']:g}. "
        f"Bridge: --log-level {settings['bridge_log_level']} (at INFO each delivery writes one log line).",
        "",
        report.table(summary, args.fractions),
        "",
        *report.ratio_lines(summary),
    ]
    wrk_shares = [entry.get("wrk_cpu_share") for entry in summary["targets"].values()]
    if any(share is not None for share in wrk_shares):
        busiest = max(share for share in wrk_shares if share is not None)
        lines.append(f"- wrk's own CPU at saturation: at most {busiest * 100:.0f}% of one core")
    lines += ["", "Kafka records against 2xx answers (every run, warm-up included):", ""]
    for name, count in kafka.items():
        verdict = "OK" if not count["shortfall"] else f"SHORTFALL {count['shortfall']} (2xx without a record)"
        extra = f", {count['extra']} more records than 2xx (in flight when wrk stopped)" if count["extra"] else ""
        dead = f", {count['dead_letters']} dead letters" if count.get("dead_letters") else ""
        lines.append(f"- {name}: {count['records']} records, {count['ok_answers']} 2xx: {verdict}{extra}{dead}")
    lines += ["", "In-process CPU per delivery (no HTTP server, no Kafka):", ""]
    for name, value in cpu.items():
        lines.append(f"- {name}: {value:.0f} µs" if isinstance(value, float) else f"- {name}: {value}")
    if notes:
        lines += ["", "Notes:", "", *(f"- {note}" for note in notes)]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def workspace() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        yield Path(folder)


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # a SIGTERM unwinds like Ctrl-C: the servers are stopped by PID on the way out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, interrupt)
    if shutil.which("wrk") is None:
        print("wrk not installed (apt install wrk)", file=sys.stderr)
        return 2
    started = time.monotonic()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    args.out.mkdir(parents=True, exist_ok=True)
    with workspace() as folder:
        bench = Bench(args, folder)
        info = machine(args, bench.workers_available)
        profile: dict[str, Any] | None = None
        failed: Exception | None = None
        try:
            bench.build_targets()
            print(
                f"starting {', '.join(t.name for t in bench.targets)} (topic prefix bench-{bench.run_id})", flush=True
            )
            bench.start()
            phases = bench.load_phases()
            if args.profile:
                profile = bench.profile()
        except (RuntimeError, OSError, KafkaException) as error:
            failed = error
        finally:
            bench.stop()  # every server, by PID, whatever happened
        kafka: dict[str, Any] = {}
        if failed is None:
            try:
                kafka = bench.count_records()
            except KafkaException as error:
                failed = error
        if not args.keep_topics:
            bench.clean_up()
        if failed is not None:
            print(f"benchmark failed: {type(failed).__name__}: {failed}", file=sys.stderr)
            return 1
    print("in-process CPU per delivery", flush=True)
    cpu = pipeline_cpu.measure(500 if args.smoke else 3000)
    names = [target.name for target in bench.targets]
    summary = report.summarise(bench.runs, names, args.fractions)
    summary.update(phases)
    info["loadavg_after"] = list(os.getloadavg())
    info["wall_seconds"] = time.monotonic() - started
    results = {
        "stamp": stamp,
        "machine": info,
        "summary": summary,
        "kafka": kafka,
        "in_process_cpu_us": cpu,
        "runs": bench.runs,
        "notes": bench.notes,
    }
    base = args.out / stamp
    text = markdown(stamp, info, summary, kafka, cpu, bench.notes, args)
    if profile is not None:
        raw = profile.pop("raw")
        (args.out / f"{stamp}.pyspy.txt").write_text(raw)
        results["profile"] = profile
        text += "\nProfile (py-spy, raw stacks in " + f"{stamp}.pyspy.txt):\n\n```\n"
        text += "\n".join(report.profile_lines(profile)) + "\n```\n"
    base.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    base.with_suffix(".md").write_text(text)
    title = f"latency against load, wrk -t1 -c{args.connections} ({stamp})"
    problem = report.plot(base.with_suffix(".png"), bench.runs, summary, title)
    if problem:
        print(problem, file=sys.stderr)
    print()
    print(text)
    print(f"results: {base}.json, .md{'' if problem else ', .png'} ({info['wall_seconds']:.0f} s)")
    shortfall = any(count["shortfall"] for count in kafka.values())
    return 1 if shortfall else 0
