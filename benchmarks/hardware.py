"""The machine a benchmark ran on, recorded beside every figure it prints."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / (1 << 20), 1)
    except OSError:
        pass
    return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def load_average() -> list[float] | None:
    """1/5/15-minute load: other work on a shared machine moves every figure."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def describe(packages: tuple[str, ...] = ("onnxruntime", "lancedb", "pyarrow", "tokenizers")) -> dict[str, Any]:
    """CPU model, cores, memory, OS, Python and the versions of the packages that do the work."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_gib": _memory_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in packages},
        "load_average": load_average(),
    }


def summary(info: dict[str, Any]) -> str:
    """One line for the printed report."""
    load = info.get("load_average")
    return (
        f"{info['cpu']}, {info['usable_cores']} of {info['logical_cores']} cores, {info['memory_gib']} GiB, "
        f"{info['os']}, Python {info['python']}" + (f", load {load[0]:.1f} at start" if load else "")
    )


def hardware() -> dict[str, Any]:
    """The flat facts the serving benchmarks print: CPU, usable cores, memory, load, runtime versions."""
    info = describe(("onnxruntime", "onnxruntime-gpu", "lancedb"))
    packages = info["packages"]
    load = info["load_average"]
    return {
        "cpu": info["cpu"],
        "cores": info["usable_cores"],
        "memory_gb": info["memory_gib"],
        "load_average_1m": load[0] if load else None,
        "python": info["python"],
        "onnxruntime": packages["onnxruntime"] or packages["onnxruntime-gpu"] or "not installed",
        "lancedb": packages["lancedb"],
    }
