"""The process config: every knob read once, one boolean parser, bad values named, README true."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from toto_datasource.core.config import KNOBS, ConfigError, ProcessConfig, parse_bool
from toto_datasource.core.resources import Resources

README = Path(__file__).resolve().parents[1] / "README.md"


def test_grafana_ini_keys_and_a_sidecars_own_environment_both_set_a_knob() -> None:
    from_grafana = ProcessConfig.from_environment({"GF_PLUGIN_MODEL": "/opt/toto",
                                                   "GF_PLUGIN_MAX_QUEUE": "8"})
    sidecar = ProcessConfig.from_environment({"TOTO_MODEL": "/opt/toto", "TOTO_MAX_QUEUE": "8"})
    assert from_grafana.model == sidecar.model == "/opt/toto"
    assert from_grafana.max_queue == sidecar.max_queue == 8
    assert ProcessConfig.from_environment({}).max_queue == 1024


def test_grafana_tells_its_edition_as_gf_edition() -> None:
    assert ProcessConfig.from_environment({"GF_EDITION": "Open Source"}).edition == "Open Source"


@pytest.mark.parametrize(("text", "value"), [("1", True), ("TRUE", True), (" yes ", True), ("on", True),
                                             ("0", False), ("False", False), ("no", False), ("off", False)])
def test_one_boolean_parser(text: str, value: bool) -> None:
    assert parse_bool("X", text) is value
    assert ProcessConfig.from_environment({"TOTO_FOLD": text}).fold is value


@pytest.mark.parametrize(("name", "text", "words"), [
    ("TOTO_FOLD", "maybe", ["TOTO_FOLD", "1/true/yes/on"]),
    ("GF_PLUGIN_MAX_RPC_THREADS", "lots", ["GF_PLUGIN_MAX_RPC_THREADS", "whole number"]),
    ("TOTO_MAX_RPC_THREADS", "5", ["TOTO_MAX_RPC_THREADS", "10-4096"]),
    ("TOTO_CACHE_TTL_S", "nan", ["TOTO_CACHE_TTL_S"]),
    ("TOTO_WARMUP_CONTEXTS", "100,x", ["TOTO_WARMUP_CONTEXTS", "commas"]),
])
def test_a_value_a_knob_cannot_take_names_the_variable(name: str, text: str, words: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        ProcessConfig.from_environment({name: text})
    assert all(w in str(err.value) for w in words), str(err.value)


def test_cpu_slots_follow_the_cores_the_process_may_use() -> None:
    assert ProcessConfig(resources=Resources(cores=3.0)).cpu_slot_count == 3
    assert ProcessConfig(resources=Resources(cores=2.5)).cpu_slot_count == 3  # the quota spent over a period
    assert ProcessConfig(resources=Resources(cores=0.5)).cpu_slot_count == 1
    assert ProcessConfig(cpu_slots=5, resources=Resources(cores=2.0)).cpu_slot_count == 5


def test_secrets_in_the_config_never_print() -> None:
    config = ProcessConfig.from_environment({"GF_PLUGIN_INFERENCE_TOKEN": "AdminInferenceTok3n"})
    assert config.inference_token == "AdminInferenceTok3n"
    assert "AdminInferenceTok3n" not in repr(config)


def test_the_readme_table_lists_every_knob_with_its_default() -> None:
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([a-z_]+)` \|.*$", README.read_text(), re.M)}
    for knob in KNOBS:
        assert knob.key in rows, f"README's process-configuration table has no row for {knob.key}"
        for name in knob.environment_names():
            assert f"`{name}`" in rows[knob.key], (knob.key, name)
