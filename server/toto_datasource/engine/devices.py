"""Whether a configured torch device exists on this machine, checked before a model load starts.

Why before: the load runs on a background thread, so a query that starts it is answered 503
"loading"; with `device: "cuda:7"` on a machine without that GPU the first query said "loading"
and only the next one the real 400. The check needs torch (~1 s to import, once; the
loader imports it anyway) and is cached per device string: GPUs do not come and go under a
running process.
"""

from __future__ import annotations

import functools

from ..core.errors import BackendError, bad_request


@functools.lru_cache(maxsize=32)
def device_problem(device: str) -> BackendError | None:
    """A 400 naming the `device` setting when it asks for a GPU torch does not see, else None.
    `device` is already one of auto, cpu, cuda, cuda:N (core/settings.py)."""
    if not device.startswith("cuda"):
        return None
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = int(device.partition(":")[2] or 0)
    if index < count:
        return None
    if count == 0:
        seen = "no CUDA GPU is visible to the plugin (torch.cuda.device_count() is 0)"
        fix = "set device to auto or cpu"
    else:
        seen = f"the plugin sees {count} GPU{'s' if count > 1 else ''} (cuda:0 to cuda:{count - 1})"
        fix = f"set device to auto, cpu or cuda:0 to cuda:{count - 1}"
    what = "names no such GPU" if ":" in device else "asks for a GPU, but there is none"
    return bad_request(f"data source setting device: {device!r} {what}: {seen}; {fix}")
