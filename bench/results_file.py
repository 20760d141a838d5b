"""Where every benchmark's Markdown goes: stdout, and with --results the end of bench/RESULTS.md."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def publish(text: str, append: bool) -> None:
    print(text)
    if append:
        with open(RESULTS, "a") as f:
            f.write("\n" + text + "\n")


def heading(command: str, machine: str) -> list[str]:
    """A section's first lines: when, the command, and the machine with its load at the time."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")
    return [f"### {stamp} — `{command}`", "", f"Machine: {machine}; load average {os.getloadavg()[0]:.1f}."]
