"""The benchmark's summary: medians and ratios, the Markdown table, the latency plot, the profile's top entries."""

from __future__ import annotations

import itertools
import re
import statistics
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

Run = dict[str, Any]
FRAME = re.compile(r"^(?P<name>.*) \((?P<file>.*?)(?::\d+)?\)$")


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def summarise(runs: list[Run], targets: list[str], fractions: Sequence[float]) -> dict[str, Any]:
    """Per target: medians over the saturation rounds and the fixed-rate points; then the ratios."""
    per_target: dict[str, Any] = {}
    for target in targets:
        saturated = [run for run in runs if run["target"] == target and run["phase"] == "saturation"]
        entry: dict[str, Any] = {
            "rounds": len(saturated),
            "requests_per_s": median([run["requests_per_s"] for run in saturated]),
            "requests_per_s_range": (
                [min(run["requests_per_s"] for run in saturated), max(run["requests_per_s"] for run in saturated)]
                if saturated
                else None
            ),
            **{
                key: median([run["latency_ms"][key] for run in saturated])
                for key in ("p50", "p99", "p99.9", "max")
                if saturated
            },
            "requests_per_cpu_s": median([run["requests_per_cpu_s"] for run in saturated if run["requests_per_cpu_s"]]),
            "cpu_s_per_1k": median([run["cpu_s_per_1k"] for run in saturated if run["cpu_s_per_1k"] is not None]),
            "cpu_s": median([run["cpu_s"] for run in saturated]),
            "rss_mib": median([run["rss_mib"] for run in saturated]),
            "processes": max((run["processes"] for run in saturated), default=None),
            "wrk_cpu_s_per_1k": median([run["wrk_cpu_s_per_1k"] for run in saturated if run["wrk_cpu_s_per_1k"]]),
            "wrk_cpu_share": median([run["wrk_cpu_s"] / run["seconds"] for run in saturated]),
            "fixed": {},
        }
        for fraction in fractions:
            fixed = [run for run in runs if run["target"] == target and run["phase"] == "fixed"]
            fixed = [run for run in fixed if run["fraction"] == fraction]
            if fixed:
                run = fixed[0]
                entry["fixed"][str(fraction)] = {
                    "offered_per_s": run["offered_per_s"],
                    "requests_per_s": run["requests_per_s"],
                    **{key: run["latency_ms"][key] for key in ("p50", "p99", "p99.9", "max")},
                    "cpu_s_per_1k": run["cpu_s_per_1k"],
                }
        per_target[target] = entry
    return {"targets": per_target, "ratios": ratios(per_target)}


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return numerator / denominator if numerator is not None and denominator else None


def ratios(per_target: dict[str, Any]) -> dict[str, float | None]:
    def get(target: str, key: str) -> float | None:
        value = per_target.get(target, {}).get(key)
        return float(value) if value is not None else None

    found: dict[str, float | None] = {
        "bridge/ceiling requests_per_s": _ratio(get("bridge", "requests_per_s"), get("ceiling", "requests_per_s")),
        "bridge/ceiling requests_per_cpu_s": _ratio(
            get("bridge", "requests_per_cpu_s"), get("ceiling", "requests_per_cpu_s")
        ),
        "bridge/producer requests_per_s": _ratio(get("bridge", "requests_per_s"), get("producer", "requests_per_s")),
        "bridge/producer requests_per_cpu_s": _ratio(
            get("bridge", "requests_per_cpu_s"), get("producer", "requests_per_cpu_s")
        ),
    }
    for target in per_target:
        if target.startswith("bridge-"):
            found[f"{target}/bridge requests_per_s"] = _ratio(
                get(target, "requests_per_s"), get("bridge", "requests_per_s")
            )
    return found


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} ms" if value >= 10 else f"{value:.2f} ms"


def _number(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def table(summary: dict[str, Any], fractions: Sequence[float]) -> str:
    """The Markdown table: one row per target, saturation medians, then each fixed-rate point."""
    targets: dict[str, Any] = summary["targets"]
    rates = {}
    for fraction in fractions:
        offered = next(
            (t["fixed"][str(fraction)]["offered_per_s"] for t in targets.values() if str(fraction) in t["fixed"]), None
        )
        rates[fraction] = offered
    head = ["target", "requests/s", "p50", "p99", "p99.9", "req per CPU-s", "CPU-s/1k req", "RSS MiB"]
    head += [f"at {_fraction_name(f)} rate ({_number(rates[f])}/s) p50/p99" for f in fractions]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, entry in targets.items():
        cells = [
            name,
            _number(entry["requests_per_s"]),
            _ms(entry.get("p50")),
            _ms(entry.get("p99")),
            _ms(entry.get("p99.9")),
            _number(entry["requests_per_cpu_s"]),
            _number(entry["cpu_s_per_1k"], 3),
            _number(entry["rss_mib"]),
        ]
        for fraction in fractions:
            point = entry["fixed"].get(str(fraction))
            cells.append(f"{_ms(point['p50'])} / {_ms(point['p99'])}" if point else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fraction_name(fraction: float) -> str:
    return {0.5: "half", 0.25: "quarter"}.get(fraction, f"{fraction:g}x")


def ratio_lines(summary: dict[str, Any]) -> list[str]:
    lines = []
    for name, value in summary["ratios"].items():
        lines.append(f"- {name}: {'-' if value is None else f'{value:.2f}'}")
    return lines


def plot(path: Path, runs: list[Run], summary: dict[str, Any], title: str) -> str | None:
    """p50 and p99 against throughput per target: its fixed-rate runs, then its saturation medians (the
    table's row). Returns why there is no plot, or None."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    except ImportError as error:
        return f"no plot: {error}"
    figure, axis = plt.subplots(figsize=(9, 5.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, (target, entry) in enumerate(summary["targets"].items()):
        points = [
            (run["requests_per_s"], run["latency_ms"]["p50"], run["latency_ms"]["p99"])
            for run in runs
            if run["target"] == target and run["phase"] == "fixed"
        ]
        if entry.get("requests_per_s") is not None and entry.get("p50") is not None:
            points.append((entry["requests_per_s"], entry["p50"], entry["p99"]))
        points.sort()
        if not points:
            continue
        x = [point[0] for point in points]
        colour = colours[index % len(colours)]
        axis.plot(x, [point[1] for point in points], "o-", color=colour, label=f"{target} p50")
        axis.plot(x, [point[2] for point in points], "^--", color=colour, label=f"{target} p99")
    axis.set_xscale("log")
    axis.set_yscale("log")
    plain = FuncFormatter(lambda value, position: f"{value:,.0f}" if value >= 1 else f"{value:g}")
    for scale in (axis.xaxis, axis.yaxis):
        scale.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        scale.set_major_formatter(plain)
        scale.set_minor_formatter(NullFormatter())
    axis.set_xlabel("requests/s answered (fixed offered rates, then saturation at c=32)")
    axis.set_ylabel("latency (ms)")
    axis.set_title(title, fontsize=10)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return None


def profile_top(raw: str, count: int = 15) -> dict[str, Any]:
    """py-spy's raw (collapsed) stacks → the top functions by self samples (the last frame of each
    stack) and by inclusive samples (every function on the stack, once).

    The inclusive list leaves out pass-through frames (never a leaf, always the same one callee: the
    entry points, the middleware chain), which would otherwise fill it at ~100% each."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    callees: dict[str, set[str]] = {}
    leaves: set[str] = set()
    total = 0
    for line in raw.splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        frames = [_function(frame) for frame in stack.split(";") if frame]
        if not frames:
            continue
        samples = int(number)
        total += samples
        own[frames[-1]] += samples
        leaves.add(frames[-1])
        for caller, callee in itertools.pairwise(frames):
            callees.setdefault(caller, set()).add(callee)
        for frame in set(frames):
            inclusive[frame] += samples
    branching = Counter(
        {name: samples for name, samples in inclusive.items() if name in leaves or len(callees.get(name, ())) > 1}
    )
    return {
        "samples": total,
        "self": [[name, samples] for name, samples in own.most_common(count)],
        "inclusive": [[name, samples] for name, samples in branching.most_common(count)],
    }


def _function(frame: str) -> str:
    """`name (path:line)` → `name (path)`: samples add up per function, not per line."""
    match = FRAME.match(frame.strip())
    return f"{match['name']} ({match['file']})" if match else frame.strip()


def profile_lines(profile: dict[str, Any]) -> list[str]:
    total = profile["samples"] or 1
    lines = [f"{profile['samples']} samples of the bridge at saturation (py-spy)", "", "top by self samples:"]
    lines += [f"  {samples * 100 / total:5.1f}%  {name}" for name, samples in profile["self"]]
    lines += ["", "top by inclusive samples (frames that only pass through to one callee left out):"]
    lines += [f"  {samples * 100 / total:5.1f}%  {name}" for name, samples in profile["inclusive"]]
    return lines
