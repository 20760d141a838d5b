"""The output of a test engine's server process, copied to its log file on a thread of its own."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path


def tee(process: subprocess.Popen[str], log_path: Path, ready_line: str, ready: threading.Event,
        name: str) -> threading.Thread:
    """Copy `process`'s stdout to `log_path`; set `ready` at the first line containing
    `ready_line`, and also when the process exits (the waiter then sees its exit code)."""

    def copy() -> None:
        assert process.stdout is not None
        with open(log_path, "w") as log:
            for line in process.stdout:
                log.write(line)
                log.flush()
                if ready_line in line:
                    ready.set()
        ready.set()

    thread = threading.Thread(target=copy, name=name, daemon=True)
    thread.start()
    return thread
