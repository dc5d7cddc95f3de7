"""BENCHMARKS.md: sections written by other measurements survive a new benchmark run, and
the targets are checked against the rows of one run."""

from __future__ import annotations

from collections import Counter

from loadtests.benchmark_report import Row, keeping_sections, sections, targets, with_section
from loadtests.loadgen import LoadResult
from loadtests.store_cost import section


def report(cost: float) -> dict:
    return {"store": "sqlite", "clients": 64, "rounds": 4, "seconds": 20.0,
            "dataset": "breast_cancer", "candidate": "random_forest",
            "requests_per_s": {"off": 3000.0, "on": 3000.0 * (1 - cost / 100)},
            "server_cpu_ms_per_request": {"off": 0.4, "on": 0.42},
            "cost_pct": cost, "paired_cost_pct": cost + 0.5}


def test_a_section_is_appended_then_replaced_in_place() -> None:
    first = with_section("# Serving benchmark\n\n| a |\n", "store-cost-sqlite",
                         section(report(3.0)))
    assert first.startswith("# Serving benchmark") and "| on | 2,910 |" in first
    assert "<= 5%: yes" in first
    second = with_section(first + "\ntail\n", "store-cost-sqlite", section(report(7.25)))
    assert "<= 5%: no" in second and "7.2%" in second and "<= 5%: yes" not in second
    assert second.count("<!-- section store-cost-sqlite -->") == 1
    assert second.rstrip().endswith("tail")  # replaced where it was


def test_a_new_benchmark_report_keeps_the_sections_of_the_old_one() -> None:
    old = with_section("# old run\n", "store-cost-sqlite", "the store row")
    old = with_section(old, "store-cost-postgresql", "the postgres row")
    new = keeping_sections("# new run\n", old)
    assert new.startswith("# new run") and "# old run" not in new
    assert set(sections(new)) == {"store-cost-sqlite", "store-cost-postgresql"}
    assert keeping_sections(new, old) == new  # nothing twice


def _measured(name: str, ok: int, seconds: float = 10.0) -> Row:
    return Row(name, LoadResult(seconds=seconds, statuses=Counter({200: ok})))


def test_targets_are_checked_against_the_rows_of_the_same_run() -> None:
    rows = [_measured("service, in-process batching, 2 API worker(s), compiled, /predict",
                      33_000),
            _measured("service, in-process batching, 2 API worker(s), compiled, V2 infer",
                      35_000),
            _measured("batch endpoint, 1000 rows", 160),
            _measured("MLServer 1.7.1, V2 infer", 7_000),
            _measured("no-op endpoint (HTTP ceiling), 2 worker(s)", 40_000),
            _measured("no-op endpoint through BentoML's API route, 2 worker(s)", 30_000)]
    checks = {name: (value, ok) for name, value, ok in targets(rows, cores=2)}
    assert checks["/predict >= 2x MLServer on one-row requests"] == ("4.7x", True)
    assert checks["batching >= 80% of the no-op endpoint (same path)"] == ("82%", True)
    assert checks["batching >= 80% of the no-op through BentoML's API route"] == ("110%", True)
    # 16,000 rows/s in 1,000-row requests against 3,300 one-row requests a second
    assert checks["batch endpoint, 1,000 rows >= 5x the rows/s of one-row /predict"] == (
        "4.8x", False)
    rows[2] = _measured("batch endpoint, 1000 rows", 170)
    checks = {name: ok for name, _, ok in targets(rows, cores=2)}
    assert checks["batch endpoint, 1,000 rows >= 5x the rows/s of one-row /predict"]
    rows[4] = _measured("no-op endpoint (HTTP ceiling), 2 worker(s)", 42_000)
    assert not {name: ok for name, _, ok in targets(rows, cores=2)}[
        "batching >= 80% of the no-op endpoint (same path)"]
