#!/usr/bin/env bash
# Mutation testing (mutmut 3) of the decision code: the promotion gate, the metrics the
# best-by-CV pick compares, the data validation, the request guard, the micro-batcher and the
# answers. Not part of CI (minutes, not seconds). Configuration: [tool.mutmut] in
# pyproject.toml (which files; fast unit tests only, never servers); the mutant patterns and
# the report: scripts/mutation_report.py; equivalent survivors: scripts/mutation_equivalent.txt.
# Writes reports/mutation.md and reports/mutation.json; exits 1 on a survivor not explained.
# MUTMUT_CHILDREN (default 2) sets the parallel workers.
set -euo pipefail
cd "$(dirname "$0")/.."
# A fresh copy every run: mutmut caches verdicts in mutants/, and a cached kill may come from
# tests or code that have changed since.
rm -rf mutants
mapfile -t scope < <(.venv/bin/python scripts/mutation_report.py --scope)
start=$SECONDS
.venv/bin/mutmut run --max-children "${MUTMUT_CHILDREN:-2}" "${scope[@]}"
echo "==> mutmut took $((SECONDS - start)) s"
.venv/bin/python scripts/mutation_report.py
