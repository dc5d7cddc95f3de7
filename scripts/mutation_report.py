"""Scope and score of the mutation run (scripts/mutation.sh).

`--scope` prints the mutant name patterns mutmut runs (one a line); without it, reads
mutmut's results under mutants/ and writes reports/mutation.json and reports/mutation.md:
per module killed/survived/total and the score, each survivor with its equivalence reason
from scripts/mutation_equivalent.txt, or flagged as a test gap.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT_FILE = ROOT / "scripts" / "mutation_equivalent.txt"

# The decision code: module -> mutant name patterns (mutmut names a mutant
# `module.x_function__mutmut_N`, a method `module.xǁClassǁmethod__mutmut_N`). training/evaluate
# and training/data are mutated only where they decide (metrics and their direction; the
# data validation), not their plots or the CSV reading.
SCOPE: dict[str, list[str]] = {
    "training/promotion.py": ["training.promotion.*"],
    "training/evaluate.py": [
        "training.evaluate.x__positive_*", "training.evaluate.x_cv_scorers__*",
        "training.evaluate.x_positive_scores__*", "training.evaluate.x_holdout_metrics__*",
        "training.evaluate.x_selection_score__*", "training.evaluate.x_is_better__*",
    ],
    "training/data.py": [
        "training.data.xǁDataValidationErrorǁ*", "training.data.x__layout_problem__*",
        "training.data.x__show__*", "training.data.x__examples__*", "training.data.x__bound__*",
        "training.data.x__check_feature__*", "training.data.x_validate_frame__*",
    ],
    "contract/spec.py": ["contract.spec.*"],
    "serving/guard.py": ["serving.guard.*"],
    "serving/asgi_body.py": ["serving.asgi_body.*"],
    "serving/batcher.py": ["serving.batcher.*"],
    "serving/answers.py": ["serving.answers.*"],
    "serving/v2.py": ["serving.v2.*"],
    "serving/request_ids.py": ["serving.request_ids.*"],
}

# mutmut's exit codes (mutmut/stats.py): 1 and 3 are kills, 0 a survivor. A timeout (the
# tests hung on the mutant, e.g. a batcher that never answers) is detected too: it counts as
# killed, as in mutmut's own badge, and is shown apart.
TIMEOUT = {36, 24, -24, 152, 255}
KILLED = {1, 3} | TIMEOUT
SURVIVED = {0}


def equivalents() -> dict[str, str]:
    """Mutant name -> why it is equivalent (lines `NAME  reason`, # comments)."""
    found: dict[str, str] = {}
    for line in EQUIVALENT_FILE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, reason = line.partition(" ")
            found[name] = reason.strip()
    return found


def results() -> dict[str, dict[str, int | None]]:
    """Module file -> {mutant name: exit code (None: not run)} for the mutants in scope."""
    out: dict[str, dict[str, int | None]] = {}
    for module, patterns in SCOPE.items():
        meta = ROOT / "mutants" / f"{module}.meta"
        if not meta.is_file():
            sys.exit(f"{meta} is missing: run scripts/mutation.sh first")
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        out[module] = {name: code for name, code in codes.items()
                       if any(fnmatch.fnmatchcase(name, p) for p in patterns)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scope", action="store_true", help="print the mutant name patterns")
    if parser.parse_args().scope:
        print("\n".join(p for patterns in SCOPE.values() for p in patterns))
        return
    known = equivalents()
    modules, rows, gaps = {}, [], []
    for module, codes in results().items():
        killed = sum(code in KILLED for code in codes.values())
        timeouts = sum(code in TIMEOUT for code in codes.values())
        survivors = sorted(n for n, code in codes.items() if code in SURVIVED)
        other = sorted(n for n, code in codes.items()
                       if code not in KILLED and code not in SURVIVED)
        total = len(codes)
        equivalent = [n for n in survivors if n in known]
        gaps += [n for n in survivors + other if n not in known]
        modules[module] = {
            "killed": killed, "of_them_timeouts": timeouts, "survived": len(survivors),
            "other": len(other), "total": total,
            "score": round(100 * killed / total, 1) if total else None,
            "equivalent": {n: known[n] for n in equivalent},
            "unexplained": [n for n in survivors + other if n not in known],
        }
        rows.append(f"| `{module}` | {killed}/{total} | {timeouts} | {len(survivors)} "
                    f"| {len(equivalent)} | {modules[module]['score']}% |")
    reports = ROOT / "reports"
    reports.mkdir(exist_ok=True)
    (reports / "mutation.json").write_text(json.dumps(modules, indent=2, ensure_ascii=False))
    lines = ["| module | killed/total | of them timeouts | survived | of them equivalent | score |",
             "|---|---|---|---|---|---|", *rows, ""]
    for data in modules.values():
        for name, reason in data["equivalent"].items():
            lines.append(f"- equivalent `{name}`: {reason}")
    for name in gaps:
        lines.append(f"- NOT EXPLAINED `{name}` (survived or not run): add a test, or list it "
                     f"in {EQUIVALENT_FILE.relative_to(ROOT)} with the reason")
    (reports / "mutation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    stale = sorted(set(known) - {n for codes in results().values() for n in codes})
    if stale:
        print(f"\nlisted as equivalent but no such mutant (source changed?): {stale}")
    if gaps:
        sys.exit(1)


if __name__ == "__main__":
    main()
