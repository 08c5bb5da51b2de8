"""The machine a benchmark ran on, printed beside its figures: the same code runs at
different speeds on different machines (and on one shared machine from day to day), so
a figure means little without it. Ratios measured in one run (worker / embedded) are
the figures to compare across machines."""

import os
import platform
from pathlib import Path


def describe() -> str:
    """``machine: <CPU model>, <N> cores, <RAM> GiB RAM, load <1-minute load average>,
    Python <version>``, from ``/proc`` where there is one."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total_kib = int(meminfo.read_text().split("MemTotal:", 1)[1].split()[0])
        memory = f", {total_kib / 1024**2:.0f} GiB RAM"
    load = f", load {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"machine: {model}, {cores} cores{memory}{load}, Python {platform.python_version()}"


if __name__ == "__main__":
    print(describe())
