#!/usr/bin/env bash
# Install the Debian packages Anchorage builds and tests with, if missing.
# Uses sudo only when not root. Safe to run repeatedly: it does nothing when
# everything is present.
set -euo pipefail

# --run: only what building and running the server and the CLI needs
# (`make run`); criterion too, since CMake configures the tests.
pkgs=(build-essential cmake pkg-config
      libfaiss-dev libopenblas-dev liblmdb-dev libnng-dev libmsgpack-dev
      libcriterion-dev libjansson-dev libssl-dev zlib1g-dev openssl)
if [ "${1:-}" != "--run" ]; then
  # issue 4's tests (tests/e2e/e2e_http_test.c): a real Prometheus
  # scraping /metrics, headless Chromium opening the status page, curl
  pkgs+=(prometheus chromium curl
         # issue 7's fuzz targets (scripts/fuzz.sh): clang with libFuzzer
         # (libclang_rt.fuzzer-x86_64.a is in libclang-rt-14-dev on bookworm)
         clang libclang-rt-14-dev)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
