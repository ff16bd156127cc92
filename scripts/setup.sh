# scripts/setup.sh — sourced by scripts/run, scripts/test and scripts/bench.
# Installs the Debian packages taskpool needs (idempotent and quiet: apt-get runs only when a
# package is missing) and provides the shared build helpers.
set -euo pipefail

TASKPOOL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TASKPOOL_JOBS="$(nproc)"

# Build tools and test/benchmark libraries; the peers are header-only or small Debian libraries.
TASKPOOL_PACKAGES=(
  g++ cmake make pkg-config
  libsqlite3-dev sqlite3 libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libtbb-dev libboost-dev libthread-pool-dev nlohmann-json3-dev
  libpq-dev libcpp-httplib-dev libhowardhinnant-date-dev tzdata
)
# scripts/test only: the Clang build (thread-safety analysis) and the libFuzzer targets; the
# PostgreSQL server for the throwaway test cluster; Chromium for the dashboard's browser test
# (playwright-core drives it, installed by `npm ci` from tests/browser/package-lock.json).
TASKPOOL_TEST_PACKAGES=(clang-14 libfuzzer-14-dev libclang-rt-14-dev postgresql chromium nodejs)

install_packages() {
  local missing=()
  for p in "${TASKPOOL_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# configure_and_build DIR [cmake args...]
configure_and_build() {
  local dir="$1"
  shift
  cmake -S "$TASKPOOL_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j "$TASKPOOL_JOBS"
}
