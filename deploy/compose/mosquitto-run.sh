#!/bin/sh
# Mosquitto for deploy/compose/compose.yaml: runs the broker on the files luach-server writes
# (`broker-config mosquitto --out /var/lib/luach/mosquitto`) and makes it re-read the device
# ACL whenever the server rewrites it (after every enrolment, revocation or deletion), since
# the server cannot signal a process in another container. Mosquitto reads the CRL only when
# it starts: a revoked screen loses its topics at once and is refused at the TLS handshake
# from the container's next start.
set -eu
dir="${LUACH_BROKER_DIR:-/var/lib/luach/mosquitto}"
acl="$dir/devices.acl"
mosquitto -c "$dir/mosquitto.conf" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null' TERM INT
seen="$(cksum <"$acl")"
while kill -0 "$pid" 2>/dev/null; do
  # In the background, so a TERM is handled at once rather than after the sleep.
  sleep 5 &
  wait $! || true
  now="$(cksum <"$acl" 2>/dev/null || echo missing)"
  if [ "$now" != "$seen" ]; then
    seen="$now"
    kill -HUP "$pid"
  fi
done
wait "$pid"
