#!/usr/bin/env bash
# Starts the whole system on embedded defaults: luach-server (embedded MQTT broker, SQLite in
# ./.luach/data, dashboard) and a few simulated screens. Ctrl-C stops everything.
#
#   LUACH_HTTP_PORT=8080 LUACH_MQTT_PORT=18883 LUACH_SCREENS=5 scripts/run.sh
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

HTTP_PORT="${LUACH_HTTP_PORT:-8080}"
MQTT_PORT="${LUACH_MQTT_PORT:-18883}"
SCREENS="${LUACH_SCREENS:-5}"
DATA_DIR="${LUACH_DATA_DIR:-$ROOT/.luach/data}"

ensure_rust
build_dashboard
say "building luach-server and luach-agent"
cargo build --locked --bins -p luach-control-plane -p luach-agent
BIN="$CARGO_TARGET_DIR/debug"

mkdir -p "$DATA_DIR"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

"$BIN/luach-server" serve --http-addr "0.0.0.0:$HTTP_PORT" --mqtt-addr "0.0.0.0:$MQTT_PORT" \
  --data-dir "$DATA_DIR" --web-dir "$ROOT/control-plane/web/dist" --log-format pretty \
  >"$DATA_DIR/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null 2>&1 && break
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$DATA_DIR/server.log" >&2; exit 1; }
  sleep 0.2
done

RUST_LOG=warn "$BIN/luach-agent" sim --count "$SCREENS" --id-prefix demo \
  --server "http://127.0.0.1:$HTTP_PORT" --heartbeat-secs 10 --metrics-secs 10 --report-secs 60 &
pids+=($!)

cat <<MSG

  Luach is running.
    Dashboard:   http://127.0.0.1:$HTTP_PORT/
    REST API:    http://127.0.0.1:$HTTP_PORT/api/v1/devices
    Metrics:     http://127.0.0.1:$HTTP_PORT/metrics
    MQTT broker: 127.0.0.1:$MQTT_PORT   ($SCREENS simulated screens connected)
    Data:        $DATA_DIR   (server log: $DATA_DIR/server.log)
  Press Ctrl-C to stop.

MSG
wait -n "${pids[@]}"
