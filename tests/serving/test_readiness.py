"""Ready only once every API worker of the server has started (serving/readiness.py)."""

from __future__ import annotations

from pathlib import Path

from serving.readiness import WorkerReadiness, _server_id


def test_ready_only_when_every_worker_has_started(tmp_path: Path) -> None:
    first, second = (WorkerReadiness(2, i, tmp_path / "server") for i in (1, 2))
    assert not first.all_started() and not second.all_started()
    first.mark_started()
    assert not first.all_started(), "one worker of two is not ready"
    second.mark_started()
    assert first.all_started() and second.all_started()


def test_other_servers_marks_do_not_count(tmp_path: Path) -> None:
    WorkerReadiness(2, 1, tmp_path / "a").mark_started()
    WorkerReadiness(2, 2, tmp_path / "a").mark_started()
    assert not WorkerReadiness(2, 1, tmp_path / "b").all_started()


def test_a_single_process_is_ready_once_started(tmp_path: Path) -> None:
    alone = WorkerReadiness(4, None, tmp_path / "s")  # no worker index: one process
    assert not alone.all_started()
    alone.mark_started()
    assert alone.all_started()


def test_the_server_id_names_the_parent_and_its_start() -> None:
    parent, started = _server_id().split("-")
    assert int(parent) > 0 and int(started) > 0
