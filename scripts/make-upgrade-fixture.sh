#!/usr/bin/env bash
# Writes an upgrade fixture: a database written by the binaries in BIN_DIR, with every kind of
# record (tenants, users, personal tokens, devices, enrolled screens and their certificates, a
# revoked one, bulk enrolment tokens, synagogue content in Hebrew and English, the audit chain),
# dumped so that a later release's tests can load it and upgrade it.
#
#   scripts/make-upgrade-fixture.sh BIN_DIR OUT_DIR [mongodb://…]
#
# Without a MongoDB URL it writes OUT_DIR/sqlite.sql (sqlite3 .dump); with one it writes
# OUT_DIR/mongo.json (every collection as MongoDB extended JSON, through pymongo from the test
# venv). Both write OUT_DIR/facts-*.json: ids and a personal token the upgrade test checks.
set -euo pipefail
BIN="$1"
OUT="$2"
MONGO="${3:-}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${LUACH_PYTHON:-$HOME/.cache/luach/venv/bin/python}"
mkdir -p "$OUT"
DATA="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$DATA"' EXIT

store=()
kind=sqlite
if [ -n "$MONGO" ]; then
  store=(--store "$MONGO")
  kind=mongo
fi
admin() { "$BIN/luach-server" admin --data-dir "$DATA" "${store[@]}" "$@"; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

admin create-tenant --id shul-a --name "Beit Knesset A" >/dev/null
admin create-tenant --id shul-b --name "Shul B" >/dev/null
printf 'fixture-password-1\n' | admin create-user --email admin@a.example --role tenant_admin --tenant shul-a --name "אדמין" >/dev/null
printf 'fixture-password-2\n' | admin create-user --email admin@b.example --role tenant_admin --tenant shul-b --name "Admin B" >/dev/null
printf 'fixture-password-3\n' | admin create-user --email root@example.org --role super_admin --name "Root" >/dev/null
TOKEN_A="$(admin create-token --email admin@a.example --name fixture --days 366)"
ENROL_A="$(admin create-enrolment-token --tenant shul-a --name "fixture screens" --uses 3 --days 365)"

HTTP="$(port)"
TLS="$(port)"
"$BIN/luach-server" serve --data-dir "$DATA" "${store[@]}" --http-addr "127.0.0.1:$HTTP" \
  --mqtt-tls-addr "127.0.0.1:$TLS" --log-format pretty >"$DATA/server.log" 2>&1 &
for _ in $(seq 1 150); do
  curl -fs "http://127.0.0.1:$HTTP/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
api() {
  local method="$1" path="$2" body="${3:-}"
  curl -fsS -X "$method" "http://127.0.0.1:$HTTP/api/v1$path" -H "authorization: Bearer $TOKEN_A" \
    -H 'content-type: application/json' ${body:+-d "$body"}
}
api POST /devices '{"id":"lobby1","name":"מסך הלובי","tags":["lobby","לובי"],"group":"main","notes":"fixture"}' >/dev/null
api PATCH /devices/lobby1 '{"notes":"edited once"}' >/dev/null
api PUT /synagogues/main '{"name":"בית כנסת","latitude":31.778,"longitude":35.2354,"timezone":"Asia/Jerusalem","israel":true,"nusach":"ashkenaz","language":"he","candle_lighting_minutes":40}' >/dev/null
MEMORIAL="$(api POST /memorials '{"name":"שרה בת אברהם","passed":{"civil":{"date":"2001-02-03"}}}' | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])')"
api POST /announcements '{"text_he":"שבת שלום","text_en":"Shabbat shalom"}' >/dev/null
api POST /users '{"email":"gabbai@a.example","name":"Gabbai","role":"gabbai","password":"fixture-password-4"}' >/dev/null

# Two screens enrol with the bulk token over the real enrolment API and connect over mutual TLS.
LUACH_ENROLMENT_TOKEN="$ENROL_A" RUST_LOG=warn "$BIN/luach-agent" sim --count 2 --id-prefix fixt \
  --server "http://127.0.0.1:$HTTP" --state-dir "$DATA/sim" --heartbeat-secs 5 --metrics-secs 5 --report-secs 600 \
  >"$DATA/sim.log" 2>&1 &
SIM=$!
for _ in $(seq 1 300); do
  online="$(api GET '/devices?status=online&limit=1' | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["data"]["total"])')"
  [ "$online" = 2 ] && break
  sleep 0.2
done
[ "$online" = 2 ] || { echo "screens did not come online" >&2; cat "$DATA/server.log" "$DATA/sim.log" >&2; exit 1; }
kill "$SIM"; wait "$SIM" 2>/dev/null || true
api POST /devices/fixt00001/revoke >/dev/null
sleep 1
kill %1; wait 2>/dev/null || true

cp "$DATA/audit/checkpoint.json" "$OUT/checkpoint-$kind.json"
printf '{"personal_token":"%s","memorial":"%s","tenants":["shul-a","shul-b"],"devices":["lobby1","fixt00000","fixt00001"],"revoked":"fixt00001"}\n' \
  "$TOKEN_A" "$MEMORIAL" >"$OUT/facts-$kind.json"
if [ -z "$MONGO" ]; then
  sqlite3 "$DATA/luach.sqlite3" .dump >"$OUT/sqlite.sql"
else
  "$PYTHON" - "$MONGO" >"$OUT/mongo.json" <<'PY'
import sys
from bson import json_util
from pymongo import MongoClient
client = MongoClient(sys.argv[1])
db = client.get_default_database("luach")
dump = {name: list(db[name].find().sort("_id", 1)) for name in sorted(db.list_collection_names())}
print(json_util.dumps(dump, json_options=json_util.CANONICAL_JSON_OPTIONS, indent=1, ensure_ascii=False))
PY
fi
echo "fixture written to $OUT ($kind)"
