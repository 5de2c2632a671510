#!/usr/bin/env bash
# Runs the whole test suite, installing or starting everything it needs:
# Debian packages (Redis, Mosquitto and its clients, promtool, Chromium, Node, tesseract with its
# Hebrew model, Xvfb; docker-compose, Go and systemd-analyze to check the deployment files),
# cargo-nextest,
# Python packages in a venv (SecantusDB, paho-mqtt, zmanim), npm packages, the dashboard build.
#
#   scripts/test.sh                 # everything
#   scripts/test.sh -E 'test(fleet)' # extra arguments go to cargo nextest run
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_rust
need_commands redis-server:redis-server mosquitto_pub:mosquitto-clients mosquitto:mosquitto promtool:prometheus \
  chromium:chromium python3:python3 tesseract:tesseract-ocr Xvfb:xvfb pkill:procps \
  docker-compose:docker-compose go:golang-go systemd-analyze:systemd
# The board's text is read back with tesseract's Hebrew model.
tesseract --list-langs 2>/dev/null | grep -qx heb || apt_install tesseract-ocr-heb
python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
ensure_node

if ! cargo nextest --version >/dev/null 2>&1; then
  say "installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

# Python test packages in a private venv, reinstalled when the requirements change.
req_sum="$(sha256sum tools/requirements-test.txt | cut -d' ' -f1)"
if [ ! -x "$LUACH_PYTHON" ] || [ "$(cat "$LUACH_VENV/.luach-req-stamp" 2>/dev/null)" != "$req_sum" ]; then
  say "python venv with test packages ($LUACH_VENV)"
  python3 -m venv "$LUACH_VENV"
  "$LUACH_VENV/bin/pip" install --quiet --disable-pip-version-check -r tools/requirements-test.txt
  echo "$req_sum" >"$LUACH_VENV/.luach-req-stamp"
fi

# npm: reference implementations and real clients (repo root), and the dashboard.
npm_install "$ROOT"
build_dashboard
say "dashboard unit tests (vitest)"
(cd control-plane/web && npm test --silent)

say "rustfmt and clippy"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

say "building (binaries are started by the end-to-end tests)"
cargo build --workspace --bins --locked

# Every reference and service is installed above, so none may be skipped.
export CI="${CI:-true}"
export LUACH_SCREENSHOT_DIR="${LUACH_SCREENSHOT_DIR:-$CACHE/screenshots}"
say "cargo nextest"
cargo nextest run --workspace --locked --no-fail-fast "$@"
