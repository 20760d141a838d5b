# Toto Forecast for Grafana. `make demo` runs the main job; `make test` runs every test.
# Both install what they need: a Python >= 3.12 venv, the generated gRPC stubs, the test checkpoint.

PYTHON_BIN ?= $(shell ls -d $$HOME/.pyenv/versions/3.12*/bin/python3.12 2>/dev/null | tail -n1 | grep . || command -v python3.12 || echo python3.12)
VENV := .venv
PY := $(VENV)/bin/python
STUBS := server/toto_datasource/_proto/pluginv2/backend_pb2.py
TINY := var/checkpoints/toto-2.0-4m-random/model.safetensors

.PHONY: all install install-demo proto tiny-model demo test test-python test-frontend test-conformance test-panels plugin dist bench lint schema clean

all: install

$(PY):
	$(PYTHON_BIN) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# Everything: the toto extra (torch), the inference servers, the dev tools.
$(VENV)/.installed: $(PY) pyproject.toml
	$(PY) -m pip install -q -e '.[dev,serving]'
	touch $@

# What `make demo` needs: the plugin with Toto in process (the toto extra), no servers, no dev tools.
$(VENV)/.installed-demo: $(PY) pyproject.toml
	$(PY) -m pip install -q -e '.[toto]'
	touch $@

$(VENV)/.grpc-tools: $(PY)
	$(PY) -m pip install -q 'grpcio-tools>=1.85,<2'
	touch $@

install: $(VENV)/.installed $(STUBS)

install-demo: $(VENV)/.installed-demo $(STUBS)

# Stubs are generated from proto/ by grpcio-tools, never edited; the virtual include path makes
# them importable as toto_datasource._proto.*.
$(STUBS): $(VENV)/.grpc-tools proto/pluginv2/backend.proto proto/goplugin/grpc_controller.proto \
		proto/inference/grpc_predict_v2.proto
	$(PY) -m grpc_tools.protoc -Itoto_datasource/_proto=proto --python_out=server --grpc_python_out=server \
		proto/pluginv2/backend.proto proto/goplugin/grpc_controller.proto proto/inference/grpc_predict_v2.proto

proto: $(STUBS)

$(TINY): | install
	$(PY) -m toto_datasource tiny-model --size 4m --output var/checkpoints/toto-2.0-4m-random

tiny-model: $(TINY)

demo: install-demo
	$(PY) -m toto_datasource demo $(if $(MODEL),--model $(MODEL))

test: lint test-python test-frontend test-conformance test-panels

test-python: install $(TINY)
	$(PY) -m pytest -q

test-frontend:
	bash grafana-plugin/frontend/test.sh

test-conformance: install $(TINY)
	bash tests/conformance/run.sh

# The plugin's answers drawn by @grafana/ui's TimeSeries in headless Chromium (installs Debian's chromium).
test-panels: install $(TINY)
	bash grafana-plugin/frontend/panels.sh

plugin: install
	bash grafana-plugin/build.sh

# The product: dist/toto_forecast_datasource-<version>-py3-none-any.whl and the sdist, carrying the
# built frontend and the plugin's files (grafana-plugin/stage.sh) and the gRPC stubs.
dist: install
	bash grafana-plugin/stage.sh
	rm -rf dist build
	$(PY) -m build --outdir dist .

bench: install $(TINY)
	$(PY) bench/run.py
	$(PY) bench/model_speed.py
	$(PY) bench/cpu_contention.py
	$(PY) bench/grafana_overhead.py
	$(PY) bench/grafana_access.py
	$(PY) bench/remote.py          # needs root: Ray and the engines run in a loopback-only netns
	$(PY) bench/ray_autoscaling.py

# The query schema is generated from the registered sources and query types; a test checks the
# committed file is current, and the frontend's tests validate the editors' output against it.
schema: install
	$(PY) -m toto_datasource schema > server/toto_datasource/query.schema.json

lint: install
	$(VENV)/bin/ruff check server tests bench
	cd server && ../$(VENV)/bin/lint-imports ../pyproject.toml

clean:
	rm -rf server/toto_datasource/_proto server/toto_datasource/plugin_assets grafana-plugin/dist dist var/demo
