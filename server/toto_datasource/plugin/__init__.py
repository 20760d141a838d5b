"""Grafana wire details: go-plugin handshake, hclog logging, pluginv2 servicers, protobuf adapters."""
