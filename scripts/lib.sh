# Shared by scripts/run.sh and scripts/test.sh: install what is missing, build what is stale.
# Everything is idempotent and cached outside the clone (under ~/.cache/luach) so a second
# run is fast, while a cold machine still gets everything it needs.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${LUACH_CACHE:-$HOME/.cache/luach}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
export LUACH_VENV="${LUACH_VENV:-$CACHE/venv}"
export LUACH_PYTHON="$LUACH_VENV/bin/python"
mkdir -p "$CACHE"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

APT_UPDATED=0
apt_install() {
  # apt_install PACKAGE... : installs Debian packages (root or sudo needed).
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "need root or sudo to install: $*" >&2; exit 1; }
    sudo="sudo"
  fi
  if [ "$APT_UPDATED" -eq 0 ]; then
    say "apt-get update"
    $sudo apt-get update -qq
    APT_UPDATED=1
  fi
  say "installing Debian packages: $*"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

need_commands() {
  # need_commands "command:package" ... : installs the packages of missing commands.
  local missing=()
  local pair
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}")
  done
  if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi
}

ensure_rust() {
  command -v cargo >/dev/null || { echo "cargo not found: install the Rust toolchain (rustup) first" >&2; exit 1; }
  if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    say "adding rustfmt and clippy to the toolchain"
    rustup component add rustfmt clippy
  fi
}

ensure_node() {
  need_commands node:nodejs npm:npm
}

npm_install() {
  # npm_install DIR : installs from the lock file when package.json or the lock changed.
  # (`npm install`, not `npm ci`: npm 11 leaves other platforms' optional packages out of
  # fresh lock files, which `npm ci` then refuses as out of sync.)
  local dir="$1"
  local stamp="$dir/node_modules/.luach-lock-stamp"
  local sum
  sum="$(cat "$dir/package.json" "$dir/package-lock.json" | sha256sum | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$sum" ]; then
    say "npm install in ${dir#"$ROOT"/}"
    (cd "$dir" && npm install --no-audit --no-fund --loglevel=error)
    sum="$(cat "$dir/package.json" "$dir/package-lock.json" | sha256sum | cut -d' ' -f1)"
    echo "$sum" >"$stamp"
  fi
}

build_dashboard() {
  ensure_node
  npm_install "$ROOT/control-plane/web"
  say "building the dashboard"
  (cd "$ROOT/control-plane/web" && npm run --silent build >/dev/null)
}
