"""The example deployment (deploy/): every Kubernetes object valid against Kubernetes' own JSON
schemas (kubernetes-validate ships them: no network), and the parts that must agree do."""

from __future__ import annotations

import configparser
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
# The oldest Kubernetes the examples claim (probes on named ports, startupProbe) and the newest schema.
VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]


def objects() -> list[dict[str, Any]]:
    docs = []
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def helm_values() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "helm" / "values-toto.yaml").read_text())


@pytest.mark.parametrize("version", VERSIONS)
def test_every_object_is_valid_kubernetes(version: str) -> None:
    docs = objects()
    assert {d["kind"] for d in docs} >= {"Deployment", "ConfigMap"}
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize("version", VERSIONS)
def test_the_helm_values_sidecar_is_a_valid_container(version: str) -> None:
    containers = yaml.safe_load(helm_values()["extraContainers"])
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "grafana"},
           "spec": {"containers": containers}}
    kubernetes_validate.validate(pod, version, strict=True)


def _flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def _container(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    for doc in docs:
        if doc["kind"] == "Deployment":
            spec = doc["spec"]["template"]["spec"]
            for c in spec.get("initContainers", []) + spec["containers"]:
                if c["name"] == name:
                    return c
    raise AssertionError(f"no container {name}")


def test_grafana_reaches_the_sidecar_where_it_listens() -> None:
    docs = objects()
    ini = configparser.ConfigParser(inline_comment_prefixes=(";",))
    ini.read_string(next(d for d in docs if d["kind"] == "ConfigMap")["data"]["grafana.ini"])
    assert ini["plugins"]["allow_loading_unsigned_plugins"] == "toto-forecast-datasource"
    server = _container(docs, "toto-plugin")["command"]
    assert _flag(server, "--address") == ini["plugin.toto-forecast-datasource"]["server_address"]
    assert _flag(server, "--address").startswith("127.0.0.1:")  # pluginv2 has no authentication
    install = _container(docs, "install-toto-plugin")["command"]
    assert install[:3] == ["toto-datasource", "install-plugin", "/var/lib/grafana-plugins"]
    assert "--sidecar" in install
    grafana = _container(docs, "grafana")
    assert {"name": "GF_PATHS_PLUGINS", "value": "/var/lib/grafana-plugins"} in grafana["env"]


def test_probes_hit_the_sidecars_probe_endpoint() -> None:
    for server in (_container(objects(), "toto-plugin"), yaml.safe_load(helm_values()["extraContainers"])[0]):
        port = int(_flag(server["command"], "--health-address").rsplit(":", 1)[1])
        assert {p["name"]: p["containerPort"] for p in server["ports"]}["probes"] == port
        expected = (("livenessProbe", "/livez"), ("readinessProbe", "/readyz"), ("startupProbe", "/livez"))
        for probe, path in expected:
            assert server[probe]["httpGet"] == {"path": path, "port": "probes"}


def test_helm_values_install_the_zip_and_point_at_the_sidecar() -> None:
    values = helm_values()
    url, plugin_id = values["plugins"][0].split(";")
    assert plugin_id == "toto-forecast-datasource" and url.endswith(".linux_amd64.zip")
    server = yaml.safe_load(values["extraContainers"])[0]["command"]
    ini = values["grafana.ini"]["plugin.toto-forecast-datasource"]
    assert ini["server_address"] == _flag(server, "--address")
