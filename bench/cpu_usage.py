"""CPU time of the benchmark's processes over a window, from /proc (Linux), so that a run says where the
machine's CPU went and not only how long the offers took: on a machine whose cores every part shares, the
latency tail is CPU saturation in the workload's bursts (docs/acd.md), and a change that moves the p99 by less
than the run-to-run spread can still be judged by the CPU it saves.

A process is named by the caller; the local stack's servers are found from tools/stack's pid records, and
PostgreSQL counts with its backends (the postmaster's children).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def process_ticks(pid: int) -> int | None:
    """utime + stime of the process (all its threads), in clock ticks; None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: fields are counted after its last ')'.
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot (/proc/stat's first line; iowait counts as idle)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])  # guest time is already inside user time
    return total - idle, total


def stack_processes(root: Path) -> dict[str, list[int]]:
    """The local stack's servers (tools/stack/stack.py's pid records), PostgreSQL with its backends."""
    found: dict[str, list[int]] = {}
    for name in ("kafka", "postgres", "redis"):
        try:
            pid = int(json.loads((root / ".stack" / "run" / f"{name}.json").read_text())["pid"])
        except (OSError, ValueError, KeyError):
            continue
        found[name] = [pid, *children_of(pid)] if name == "postgres" else [pid]
    return found


@dataclass
class Sample:
    ticks: dict[tuple[str, int], int]  # (name, pid) -> the process's clock ticks
    busy: int
    total: int


def sample(processes: dict[str, list[int]]) -> Sample:
    ticks = {(name, pid): t for name, pids in processes.items() for pid in pids
             if (t := process_ticks(pid)) is not None}
    busy, total = machine_ticks()
    return Sample(ticks, busy, total)


def report(before: Sample, after: Sample) -> str:
    """One line: CPU-seconds per named process over the window, largest first, and the machine's busy share."""
    used: dict[str, float] = {}
    for (name, pid), ticks in before.ticks.items():
        if (name, pid) in after.ticks:  # a process gone in the meantime (a PostgreSQL backend) is left out
            used[name] = used.get(name, 0.0) + (after.ticks[(name, pid)] - ticks) / TICKS_PER_S
    cpus = os.cpu_count() or 1
    seconds = (after.total - before.total) / TICKS_PER_S / cpus
    busy = (after.busy - before.busy) / max(1, after.total - before.total)
    parts = ", ".join(f"{name} {value:.1f}" for name, value in sorted(used.items(), key=lambda item: -item[1]))
    return (f"CPU-seconds over {seconds:.0f} s on {cpus} CPUs: {parts}; all named {sum(used.values()):.1f}; "
            f"machine {busy * 100:.0f}% busy")
