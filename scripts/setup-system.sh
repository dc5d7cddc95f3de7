#!/usr/bin/env bash
# Debian packages the tests need: prometheus (promtool for the rule tests and the server
# for the end-to-end scrape test). Idempotent; installs only what is missing.
set -euo pipefail
need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "error: installing ${need[*]} needs root: run 'apt-get install ${need[*]}' as root" >&2
    exit 1
  fi
  SUDO=sudo
fi
echo "==> apt-get install ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
