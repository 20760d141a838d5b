"""The KServe virtualenv (var/kserve-venv): KServe 0.21 with its protobuf < 7, layered on the
project's venv for torch, toto2 and the rest.

    python tests/serving/kserve_venv.py [VENV]     # build or reuse; prints the venv's python

Why its own venv: KServe 0.21's Python server needs protobuf < 7, the project pins protobuf 7.
Layered on the project venv (tests/serving/layered_venv.py): only KServe and its dependencies
(~70 packages, ~440 MB; numpy pinned to the project venv's version, for the torch it shares);
KServe's protobuf, grpcio, numpy win. Measured on 2 shared cores: ~2 min to build (pip ~1 min 45 s),
~0 s to reuse.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

if __package__:
    from .layered_venv import ensure as ensure_layered
else:  # run as a script: python tests/serving/kserve_venv.py
    from layered_venv import ensure as ensure_layered

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_VENV = ROOT / "var" / "kserve-venv"
REQUIREMENTS = ("kserve==0.21.*", "protobuf<7")

# Run in the built venv: where each layer's packages come from.
_CHECK = """
import json, google.protobuf, grpc, kserve, numpy, torch, toto2
print(json.dumps({"protobuf": google.protobuf.__version__, "protobuf_at": google.protobuf.__file__,
                  "kserve": kserve.__file__, "numpy": numpy.__version__, "torch_at": torch.__file__,
                  "toto2_at": toto2.__file__}))
"""


def _verify(found: dict[str, str], venv: str) -> None:
    if int(found["protobuf"].split(".")[0]) >= 7 or not found["protobuf_at"].startswith(venv):
        raise RuntimeError(f"the KServe venv does not get its own protobuf < 7: {found}")


def ensure(venv: Path = DEFAULT_VENV) -> Path:
    """Build the venv unless a matching one is there; → its python. Safe to call concurrently."""
    requirements = [*REQUIREMENTS, f"numpy=={metadata.version('numpy')}"]
    return ensure_layered(venv, "KServe", requirements, _CHECK, _verify)



if __name__ == "__main__":
    print(ensure(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else DEFAULT_VENV))
