#!/bin/sh
# Installs the Debian 12 packages credwatch needs to build, test and benchmark (curl with the build
# set: the README's first steps post a sample with it).
# Usage: scripts/deps.sh build|test|bench|fuzz
# test includes clang and libFuzzer (libclang-rt-14-dev) for the fuzz smoke test; fuzz is what
# `make fuzz` needs.
# Installs only what is missing; as non-root it stops with the exact command to run.
set -eu
BUILD_PKGS="gcc make pkg-config libmicrohttpd-dev libjansson-dev libhiredis-dev libyajl-dev zlib1g-dev curl libcurl4-openssl-dev libssl-dev"
FUZZ_PKGS="$BUILD_PKGS clang libclang-rt-14-dev"
TEST_PKGS="$FUZZ_PKGS libcmocka-dev redis-server curl python3 python3-yaml python3-jsonschema openssl"
BENCH_PKGS="$TEST_PKGS wrk"
case "${1:-build}" in
  build) want=$BUILD_PKGS ;;
  test) want=$TEST_PKGS ;;
  bench) want=$BENCH_PKGS ;;
  fuzz) want=$FUZZ_PKGS ;;
  *) echo "usage: $0 build|test|bench|fuzz" >&2; exit 2 ;;
esac
missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "credwatch: missing Debian packages:$missing" >&2
  echo "run as root: apt-get update && apt-get install -y$missing" >&2
  exit 1
fi
echo "credwatch: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >&2
