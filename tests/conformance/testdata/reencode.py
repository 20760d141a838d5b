"""Re-encode Grafana's golden frames with the project's Arrow codec (driven by vectors_test.go).

Usage: reencode.py SRC_DIR OUT_DIR. Every frame of SRC_DIR (*.arrow files, and the FRAME=<base64>
lines of the SDK's *.golden.txt dumps) is decoded and encoded again by toto_datasource.frames,
then written to OUT_DIR/<file name>.<frame index>.arrow for Go's SDK to read back.
"""

import base64
import pathlib
import sys

from toto_datasource.frames.arrow import decode_frame, encode_frame


def golden_frames(path: pathlib.Path) -> list[bytes]:
    if path.suffix == ".arrow":
        return [path.read_bytes()]
    if path.name.endswith(".txt"):
        lines = path.read_text().splitlines()
        return [base64.b64decode(line.removeprefix("FRAME=")) for line in lines if line.startswith("FRAME=")]
    return []


def main() -> None:
    src, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    for path in sorted(src.iterdir()):
        for i, raw in enumerate(golden_frames(path)):
            (out / f"{path.name}.{i}.arrow").write_bytes(encode_frame(decode_frame(raw)))


if __name__ == "__main__":
    main()
