#!/usr/bin/env bash
# Re-resolve pyproject.toml's ranges in a scratch venv and write requirements.lock.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3.11 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install --quiet --upgrade pip
"$tmp/venv/bin/pip" install --quiet ".[dev]"
{
  echo "# Locked versions (pip freeze of a working .venv, Python 3.11, Linux x86_64)."
  echo "# Regenerate: scripts/lock.sh"
  "$tmp/venv/bin/pip" freeze --exclude-editable | grep -v "^tabular-serving"
} > requirements.lock
echo "wrote requirements.lock"
