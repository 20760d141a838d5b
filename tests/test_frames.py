"""Our Arrow codec against frames written by Grafana's own SDK (tests/vectors), both ways."""

from __future__ import annotations

import base64
import json

import numpy as np
import pyarrow as pa
import pytest
from conftest import VECTORS
from toto_datasource.frames import Field, Frame, FrameMeta, Notice, decode_frame, encode_frame


def _schema_facts(data: bytes):
    schema = pa.ipc.open_file(pa.BufferReader(data)).schema
    meta = {k.decode(): v.decode() for k, v in (schema.metadata or {}).items()}
    fields = [
        (f.name, str(f.type), f.nullable, {k.decode(): v.decode() for k, v in (f.metadata or {}).items()})
        for f in schema
    ]
    return meta, fields


def _json_equal(a: dict[str, str], b: dict[str, str]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        try:
            assert json.loads(a[key]) == json.loads(b[key]), key
        except json.JSONDecodeError:
            assert a[key] == b[key], key


def test_golden_all_types_survives_decode_and_reencode() -> None:
    data = (VECTORS / "all_types.golden.arrow").read_bytes()
    frame = decode_frame(data)
    assert frame.name == "many_types" and frame.ref_id == "A" and len(frame.fields) == 35 and frame.rows == 5
    assert frame.meta is not None and frame.meta.executed_query_string == "SELECT * FROM table"
    again = encode_frame(frame)
    (meta_a, fields_a), (meta_b, fields_b) = _schema_facts(data), _schema_facts(again)
    _json_equal(meta_a, meta_b)
    assert len(fields_a) == len(fields_b)
    for (na, ta, nla, ma), (nb, tb, nlb, mb) in zip(fields_a, fields_b, strict=True):
        assert (na, ta, nla) == (nb, tb, nlb)
        _json_equal(ma, mb)
    table_a = pa.ipc.open_file(pa.BufferReader(data)).read_all()
    table_b = pa.ipc.open_file(pa.BufferReader(again)).read_all()

    def plain(column: pa.ChunkedArray) -> list:
        return ["NaN" if isinstance(v, float) and v != v else v for v in column.to_pylist()]

    assert [plain(c) for c in table_a.columns] == [plain(c) for c in table_b.columns]


@pytest.mark.parametrize("path", sorted(VECTORS.glob("*.golden.txt")), ids=lambda p: p.name)
def test_every_sdk_golden_response_decodes(path) -> None:
    frames = [
        line.removeprefix("FRAME=") for line in path.read_text().splitlines() if line.startswith("FRAME=")
    ]
    assert frames, "no frames in vector"
    for encoded in frames:
        data = base64.b64decode(encoded)
        frame = decode_frame(data)
        assert all(len(f) == frame.rows for f in frame.fields)
        _json_equal(_schema_facts(data)[0], _schema_facts(encode_frame(frame))[0])


def test_forecast_style_frame_round_trip() -> None:
    values = np.array([1.0, np.nan, 3.0])
    frame = Frame(
        "x",
        [
            Field.time("time", np.array([0, 1000, 2000])),
            Field.number("x", values, {"b": "2", "a": "1"}, {"displayNameFromDS": "x p50"}),
        ],
        meta=FrameMeta(type="timeseries-multi", type_version=(0, 1), notices=[Notice("info", "hi")]),
    )
    data = encode_frame(frame, ref_id="Q")
    assert data[:6] == b"ARROW1" and data[-6:] == b"ARROW1"  # IPC file, not stream
    meta, fields = _schema_facts(data)
    assert meta["refId"] == "Q" and json.loads(meta["meta"])["typeVersion"] == [0, 1]
    assert fields[0][1] == "timestamp[ns]" and fields[0][2] is False
    assert fields[1][3]["labels"] == '{"a":"1","b":"2"}'  # sorted keys, as the SDK writes them
    back = decode_frame(data)
    assert back.fields[1].nullable and back.fields[1].values.null_count == 1  # NaN → null (a gap)
    assert back.meta.notices[0].text == "hi"


def test_encoder_refuses_types_grafana_cannot_read() -> None:
    frame = Frame("x", [Field("s", pa.array(["a"], type=pa.large_string()))])
    with pytest.raises(ValueError, match="not readable by Grafana"):
        encode_frame(frame)
