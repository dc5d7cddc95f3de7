#!/usr/bin/env bash
# Dependency audit: known vulnerabilities (PyPI advisory database, via pip-audit) in the
# locked versions. Needs network access to pypi.org; not part of the default test run
# because its answer changes as advisories are published.
# Usage: scripts/audit.sh [requirements.lock|requirements-serving.txt]  (default: both)
# Writes reports/audit-<file>.json; exits 1 if any locked package has a known vulnerability.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
mkdir -p reports
status=0
for file in "${@:-requirements.lock requirements-serving.txt}"; do
  for f in $file; do
    echo "==> auditing $f"
    # --no-deps: the files are complete pins already; --disable-pip: no resolver run.
    if ! .venv/bin/pip-audit --requirement "$f" --no-deps --disable-pip --progress-spinner off \
        --format json --output "reports/audit-$(basename "$f" .txt).json" --desc on; then
      status=1
    fi
    .venv/bin/python - "reports/audit-$(basename "$f" .txt).json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
deps = report.get("dependencies", [])
vulnerable = [d for d in deps if d.get("vulns")]
print(f"    {len(deps)} packages checked, {len(vulnerable)} with known vulnerabilities")
for d in vulnerable:
    for v in d["vulns"]:
        fixes = ", ".join(v.get("fix_versions") or []) or "no fix yet"
        print(f"    - {d['name']} {d['version']}: {v['id']} (fixed in: {fixes})")
PY
  done
done
exit $status
