#!/usr/bin/env bash
# Starts the whole system on embedded defaults: luach-server (embedded MQTT broker, SQLite in
# ./.luach/data, dashboard) and a few simulated screens that enrol with a bulk token and connect
# over mutual TLS. Ctrl-C stops everything.
#
#   LUACH_HTTP_PORT=8080 LUACH_MQTT_PORT=18883 LUACH_MQTT_TLS_PORT=18884 LUACH_SCREENS=5 scripts/run.sh
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

HTTP_PORT="${LUACH_HTTP_PORT:-8080}"
MQTT_PORT="${LUACH_MQTT_PORT:-18883}"
MQTT_TLS_PORT="${LUACH_MQTT_TLS_PORT:-18884}"
SCREENS="${LUACH_SCREENS:-5}"
DATA_DIR="${LUACH_DATA_DIR:-$ROOT/.luach/data}"

ensure_rust
build_dashboard
say "building luach-server and luach-agent"
cargo build --locked --bins -p luach-control-plane -p luach-agent
BIN="$CARGO_TARGET_DIR/debug"

mkdir -p "$DATA_DIR"
# The demo tenant (the admin CLI works on the store directly; `create-tenant` fails harmlessly
# when the tenant exists), its administrator on first run, and a bulk enrolment token for the
# simulated screens.
"$BIN/luach-server" admin --data-dir "$DATA_DIR" create-tenant --id default --name "Demo synagogue" >/dev/null 2>&1 || true
ADMIN_EMAIL="${LUACH_ADMIN_EMAIL:-admin@luach.local}"
ADMIN_FILE="$DATA_DIR/demo-admin.txt"
if [ ! -f "$ADMIN_FILE" ]; then
  say "creating tenant 'default' and its administrator $ADMIN_EMAIL"
  ADMIN_PASSWORD="${LUACH_ADMIN_PASSWORD:-$(head -c 18 /dev/urandom | base64 | tr -d '/+=')}"
  printf '%s\n' "$ADMIN_PASSWORD" | "$BIN/luach-server" admin --data-dir "$DATA_DIR" \
    create-user --email "$ADMIN_EMAIL" --role tenant_admin --tenant default --name "Demo admin" >/dev/null
  (umask 077 && printf 'email: %s\npassword: %s\n' "$ADMIN_EMAIL" "$ADMIN_PASSWORD" >"$ADMIN_FILE")
fi

TOKEN="$("$BIN/luach-server" admin --data-dir "$DATA_DIR" create-enrolment-token --tenant default \
  --name "scripts/run.sh demo" --uses "$((SCREENS + 1))" --days 1)"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

# The plain listener is off by default; the demo opens it on loopback for development tools.
LUACH_MQTT__PLAIN_LISTENER=true "$BIN/luach-server" serve --http-addr "0.0.0.0:$HTTP_PORT" \
  --mqtt-addr "127.0.0.1:$MQTT_PORT" \
  --mqtt-tls-addr "0.0.0.0:$MQTT_TLS_PORT" \
  --data-dir "$DATA_DIR" --web-dir "$ROOT/control-plane/web/dist" --log-format pretty \
  >"$DATA_DIR/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null 2>&1 && break
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$DATA_DIR/server.log" >&2; exit 1; }
  sleep 0.2
done

# Screens keep their keys and certificates in $DATA_DIR/sim (beside the CA that issued them),
# so a second run reuses them.
LUACH_ENROLMENT_TOKEN="$TOKEN" RUST_LOG=warn "$BIN/luach-agent" sim --count "$SCREENS" --id-prefix demo \
  --server "http://127.0.0.1:$HTTP_PORT" --state-dir "$DATA_DIR/sim" \
  --heartbeat-secs 10 --metrics-secs 10 --report-secs 60 &
pids+=($!)

# One real screen agent, `lobby`, drawing the board (headless unless LUACH_DEMO_DISPLAY is
# `x11` or `auto`): it takes screenshots and answers display commands like a screen on a wall.
LUACH_ENROLMENT_TOKEN="$TOKEN" RUST_LOG=warn "$BIN/luach-agent" run --device-id lobby \
  --server "http://127.0.0.1:$HTTP_PORT" --state-dir "$DATA_DIR/lobby" \
  --display "${LUACH_DEMO_DISPLAY:-none}" >"$DATA_DIR/lobby.log" 2>&1 &
pids+=($!)

cat <<MSG

  Luach is running.
    Dashboard:   http://127.0.0.1:$HTTP_PORT/   (sign in with $ADMIN_FILE)
    REST API:    http://127.0.0.1:$HTTP_PORT/api/v1/devices
    Metrics:     http://127.0.0.1:$HTTP_PORT/metrics
    MQTT broker: 127.0.0.1:$MQTT_TLS_PORT mutual TLS ($SCREENS simulated screens and the screen
                 agent lobby, enrolled with a bulk token)
                 127.0.0.1:$MQTT_PORT plain TCP (development only)
    Device CA:   $DATA_DIR/pki
    Data:        $DATA_DIR   (server log: $DATA_DIR/server.log)
  Press Ctrl-C to stop.

MSG
wait -n "${pids[@]}"
