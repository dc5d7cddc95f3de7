"""BENCHMARKS.md sections written by other measurements survive a new benchmark run."""

from __future__ import annotations

from loadtests.benchmark_report import keeping_sections, sections, with_section
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
