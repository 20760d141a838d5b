#!/bin/sh
# Toto Forecast data source, sidecar launcher: the plugin server runs as its own process
# (`toto-datasource serve --address 127.0.0.1:50051`, e.g. a second container in Grafana's pod)
# and this script, which Grafana starts, hands Grafana that server's address (go-plugin's
# handshake line) instead of starting a server. No Python here: only /bin/sh.
#
# The address, first found wins:
#   grafana.ini [plugin.toto-forecast-datasource] server_address = 127.0.0.1:50051
#     (Grafana passes it as GF_PLUGIN_SERVER_ADDRESS; in a container set
#      GF_PLUGIN_TOTO_FORECAST_DATASOURCE_SERVER_ADDRESS on Grafana)
#   server_address.txt next to this script (install-plugin --sidecar --address)
#   127.0.0.1:50051
# server_wait_seconds (default 60): how long to wait for a server that is still starting.
#
# Restarts: Grafana restarts this script when it exits; the server keeps its loaded model. When
# the server restarts, Grafana's connection reconnects on the next query. Grafana's Shutdown
# reaches the server, which ignores it (it serves every Grafana that connects); Grafana then
# kills this script.

PATH=${PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}
export PATH
dir=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)

log() {  # one hclog JSON line on stderr: Grafana logs it at that level
  printf '{"@level":"%s","@message":"toto-forecast sidecar launcher: %s"}\n' "$1" "$2" >&2
}

addr=${GF_PLUGIN_SERVER_ADDRESS:-${GF_PLUGIN_STANDALONE_ADDRESS:-}}
if [ -z "$addr" ] && [ -s "$dir/server_address.txt" ]; then
  addr=$(head -n 1 "$dir/server_address.txt")
fi
addr=${addr:-127.0.0.1:50051}
case $addr in
  *[!A-Za-z0-9.:_\[\]-]* | *:) log error "server_address '$addr' is not host:port"; exit 1 ;;
  *:*) ;;
  *) log error "server_address '$addr' is not host:port"; exit 1 ;;
esac
wait_s=${GF_PLUGIN_SERVER_WAIT_SECONDS:-60}
case $wait_s in '' | *[!0-9]*) wait_s=60 ;; esac

host=${addr%:*}
port=${addr##*:}
host=${host#[}
host=${host%]}

# Does something accept TCP connections at the address? bash's /dev/tcp, else nc; with neither,
# Grafana's own dial reports a server that does not answer.
answers() {
  if command -v bash >/dev/null 2>&1; then
    bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$host" "$port" 2>/dev/null
  elif command -v nc >/dev/null 2>&1; then
    nc -z -w 2 "$host" "$port" 2>/dev/null
  else
    return 0
  fi
}

waited=0
until answers; do
  if [ "$waited" -ge "$wait_s" ]; then
    log error "no plugin server answers at $addr after ${wait_s}s: start it (toto-datasource serve --address $addr, the sidecar container) or set server_address in [plugin.toto-forecast-datasource]"
    exit 1
  fi
  [ "$waited" -eq 0 ] && log info "waiting up to ${wait_s}s for the plugin server at $addr"
  sleep 1
  waited=$((waited + 1))
done

printf '1|2|tcp|%s|grpc\n' "$addr"
log info "Grafana connects to the plugin server at $addr"
exec sleep 2147483647
