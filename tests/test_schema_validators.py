"""The compiled query check (fastjsonschema) and jsonschema agree on every query.

parse_query trusts the compiled check to accept and asks jsonschema only about a refused query,
so a query the compiled check accepted but jsonschema would refuse would slip past validation.
Seeded hypothesis over every key of the registered schema with hostile JSON values."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from toto_datasource.engine.registry import ModelRegistry
from toto_datasource.query.schema import QueryValidator
from toto_datasource.service import ForecastDataSource

SCHEMA = ForecastDataSource(ModelRegistry(warmup=False)).schema()
CHECK = QueryValidator(SCHEMA)
KEYS = sorted(SCHEMA["properties"])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats(allow_nan=False)
    | st.text(max_size=8) | st.sampled_from(["5m", "1h", "2h30m", "0s", "-1m", "forecast", "demo", "p90"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


def typed_value(key: str) -> st.SearchStrategy[object]:
    """Mostly values of the property's own type (enum members, numbers near bounds), so that
    both validators get past the type check and the finer keywords are compared too."""
    prop = SCHEMA["properties"][key]
    options = [json_values]
    if "enum" in prop:
        options.append(st.sampled_from(prop["enum"]))
    kinds = prop.get("type", [])
    kinds = [kinds] if isinstance(kinds, str) else kinds
    if "integer" in kinds or "number" in kinds:
        options.append(st.integers(-10, 20_000) | st.floats(-1e6, 1e6))
    if "array" in kinds:
        options.append(st.lists(st.floats(0, 1) | st.text(max_size=4) | st.integers(0, 5), max_size=12))
    return st.one_of(options)


@st.composite
def queries(draw: st.DrawFn) -> dict[str, object]:
    keys = draw(st.lists(st.sampled_from(KEYS), max_size=5, unique=True))
    body = {key: draw(typed_value(key)) for key in keys}
    body.update(draw(st.dictionaries(st.text(max_size=6), json_values, max_size=2)))
    return body


@settings(max_examples=int(os.environ.get("TOTO_SCHEMA_EXAMPLES", "1000")), derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(queries())
def test_compiled_check_accepts_exactly_what_jsonschema_accepts(body: dict[str, object]) -> None:
    reference = CHECK.check.is_valid(body)
    assert (CHECK.first_error(body) is None) == reference, body


def test_valid_query_is_not_modified_by_the_check() -> None:
    """No defaults written into the caller's query (fastjsonschema's use_default is off)."""
    body = {"source": "demo", "horizon": "1h"}
    assert CHECK.first_error(body) is None
    assert body == {"source": "demo", "horizon": "1h"}
