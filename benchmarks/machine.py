"""Where the numbers came from: cores, CPU model, Python, package versions, load, date."""

from __future__ import annotations

import datetime
import os
import platform
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

PACKAGES = ("pocket-parallel", "pocketflow", "aiometer", "anyio", "looptime")


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (or what ``platform`` knows elsewhere)."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def load_average() -> tuple[float, float, float] | None:
    """The 1, 5 and 15 minute load averages (what ``uptime`` prints), or None where unknown."""
    try:
        return os.getloadavg()
    except (AttributeError, OSError):
        return None


def load_text(load: tuple[float, float, float] | None) -> str:
    """Load averages as "1.20, 1.05, 0.98", or "unknown"."""
    return "unknown" if load is None else ", ".join(f"{x:.2f}" for x in load)


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


@dataclass(frozen=True)
class Machine:
    """A description of the machine and software a benchmark ran on."""

    cores: int
    cpu: str
    python: str
    system: str
    packages: tuple[tuple[str, str], ...]
    date: str
    load_start: tuple[float, float, float] | None
    load_end: tuple[float, float, float] | None = None

    def summary(self) -> str:
        """One line: cores, CPU, Python, system."""
        return f"{self.cores} cores, {self.cpu}, Python {self.python}, {self.system}"

    def load_text(self) -> str:
        """The load averages at the start (and at the end, once known), as ``uptime`` shows them."""

        def text(load: tuple[float, float, float] | None) -> str:
            return "unknown" if load is None else ", ".join(f"{x:.2f}" for x in load)

        start = f"load average (1, 5, 15 min) {text(self.load_start)} at the start"
        return start if self.load_end is None else f"{start}, {text(self.load_end)} at the end"


def describe() -> Machine:
    """Describe this machine now (``load_end`` is filled in by :func:`finished`)."""
    return Machine(
        cores=os.cpu_count() or 1,
        cpu=cpu_model(),
        python=f"{platform.python_implementation()} {platform.python_version()}".replace("CPython ", ""),
        system=f"{platform.system()} {platform.release()}",
        packages=tuple((name, _version(name)) for name in PACKAGES),
        date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        load_start=load_average(),
    )


def machine_from_json(data: dict[str, Any]) -> Machine:
    """The inverse of ``dataclasses.asdict`` on a :class:`Machine` read back from JSON (lists become tuples)."""
    loads = {key: None if data[key] is None else tuple(data[key]) for key in ("load_start", "load_end")}
    return Machine(**{**data, "packages": tuple(tuple(p) for p in data["packages"]), **loads})


def finished(machine: Machine) -> Machine:
    """``machine`` with the load average at the end of the run."""
    return Machine(**{**machine.__dict__, "load_end": load_average()})
