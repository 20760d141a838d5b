"""Where every benchmark's Markdown goes: stdout, and with --results the end of bench/RESULTS.md."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def publish(text: str, append: bool) -> None:
    print(text)
    if append:
        with open(RESULTS, "a") as f:
            f.write("\n" + text + "\n")
