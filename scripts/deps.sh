#!/bin/sh
# Installs the Debian 12 packages credwatch needs to build, test and benchmark (curl with the build
# set: the README's first steps post a sample with it).
# Usage: scripts/deps.sh build|test|bench|fuzz
# test also installs, best effort, what the browser tests need (see browser_deps below).
# test includes clang and libFuzzer (libclang-rt-14-dev) for the fuzz smoke test; fuzz is what
# `make fuzz` needs.
# Installs only what is missing; as non-root it stops with the exact command to run.
set -eu
BUILD_PKGS="gcc make pkg-config libmicrohttpd-dev libjansson-dev libhiredis-dev libyajl-dev zlib1g-dev curl libcurl4-openssl-dev libssl-dev liblmdb-dev libgnutls28-dev"
FUZZ_PKGS="$BUILD_PKGS clang libclang-rt-14-dev"
TEST_PKGS="$FUZZ_PKGS libcmocka-dev redis-server curl python3 python3-yaml python3-jsonschema openssl lmdb-utils"
BENCH_PKGS="$TEST_PKGS wrk python3-redis"
case "${1:-build}" in
  build) want=$BUILD_PKGS ;;
  test) want=$TEST_PKGS ;;
  bench) want=$BENCH_PKGS ;;
  fuzz) want=$FUZZ_PKGS ;;
  *) echo "usage: $0 build|test|bench|fuzz" >&2; exit 2 ;;
esac
# tests/it_browser.sh (the findings page in headless Chromium): Debian's chromium, nodejs and npm, then
# playwright-core from the npm registry as tests/browser/package-lock.json pins it. Best effort: where they
# cannot be installed, that test prints a SKIP with the reason instead of failing the suite.
BROWSER_DIR=$(cd "$(dirname "$0")/.." && pwd)/tests/browser

missing_of() {
  _m=""
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || _m="$_m $p"
  done
  echo "$_m"
}

browser_deps() {
  bmissing=$(missing_of chromium)
  # node and npm from elsewhere (NodeSource, nvm) do as well as Debian's
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || bmissing="$bmissing nodejs npm"
  if [ -n "$bmissing" ]; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "credwatch: the browser tests need Debian packages:$bmissing (as root: apt-get install -y$bmissing); without them tests/it_browser.sh is skipped" >&2
    else
      echo "credwatch: installing$bmissing (browser tests)" >&2
      export DEBIAN_FRONTEND=noninteractive
      # shellcheck disable=SC2086
      { [ "$updated" = 1 ] || apt-get update -qq; } && apt-get install -y -qq --no-install-recommends $bmissing >&2 ||
        echo "credwatch: could not install$bmissing: tests/it_browser.sh will be skipped" >&2
    fi
  fi
  command -v npm >/dev/null 2>&1 || return 0
  pw_want=$(sed -n 's/.*"playwright-core": "\([0-9.]*\)".*/\1/p' "$BROWSER_DIR/package.json")
  pw_have=$(sed -n 's/^  "version": "\([0-9.]*\)".*/\1/p' "$BROWSER_DIR/node_modules/playwright-core/package.json" 2>/dev/null || true)
  [ "$pw_have" = "$pw_want" ] && return 0
  echo "credwatch: npm ci --prefix tests/browser (playwright-core $pw_want)" >&2
  timeout 120 npm ci --prefix "$BROWSER_DIR" --no-audit --no-fund --loglevel=error >&2 ||
    echo "credwatch: npm ci --prefix tests/browser failed: tests/it_browser.sh will be skipped" >&2
}

updated=0
missing=$(missing_of $want)
if [ -n "$missing" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "credwatch: missing Debian packages:$missing" >&2
    echo "run as root: apt-get update && apt-get install -y$missing" >&2
    exit 1
  fi
  echo "credwatch: installing$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  updated=1
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >&2
fi
if [ "${1:-build}" = test ]; then browser_deps; fi
exit 0
