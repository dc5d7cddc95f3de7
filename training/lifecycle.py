"""Which registered version serves, changed by hand and reversibly: promote, roll back, and
the challenger alias.

Three things move together, in this order: the MLflow alias `champion` (the source of
truth), the BentoML twin (exported from MLflow if missing), and BentoML's `NAME:latest`
pointer, which is what `bentoml serve` with a model name and scripts/build-bento.sh load.
If the export or the pointer fails, the alias and the pointer move back.

History: the registered model's tag `champion_history` lists the versions that were
champion, oldest first, as a stack. Promote (and a training run that promotes) pushes;
rollback pops the current champion and returns to the one below it, so repeated rollbacks
walk back through earlier champions instead of toggling between the last two. Each version
that becomes champion carries who, when, why and which version it replaced.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bentoml
from bentoml._internal.tag import Tag
from mlflow.exceptions import MlflowException

from training import registry
from training.redact import redact_url

CHAMPION = registry.CHAMPION
CHALLENGER = "challenger"
HISTORY_TAG = "champion_history"
HISTORY_LIMIT = 200  # versions kept in the tag; older entries cannot be rolled back to


class LifecycleError(RuntimeError):
    """A promote or rollback that cannot be done, with what to do instead."""


@dataclass(frozen=True)
class Change:
    model_name: str
    action: str  # promote, rollback
    version: str
    previous: str | None
    bento_tag: str
    exported: bool  # the BentoML twin was missing and has been exported
    by: str
    at: str
    reason: str


def operator(by: str | None = None) -> str:
    """`--by`, else the OS user (a container without a passwd entry has none)."""
    if by:
        return by
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


# --- BentoML's NAME:latest ---------------------------------------------------------------

def _store_root() -> Path:
    from bentoml._internal.configuration.containers import BentoMLContainer

    return Path(BentoMLContainer.model_store.get()._path)


def latest_version(model_name: str) -> str | None:
    """The version `NAME:latest` names in the store's pointer file, if any."""
    pointer = _store_root() / Tag(model_name).latest_path()
    return pointer.read_text().strip() if pointer.is_file() else None


def serve_as_latest(tag: str) -> None:
    """Make `NAME:latest` resolve to `tag`.

    BentoML resolves `NAME:latest` through the file NAME/latest in its store: a save writes
    it when the new model is the newest by creation time, and only when the file is missing
    or names a deleted version does BentoML fall back to the newest by creation time. A
    rollback's target is older than the version it replaces, so the pointer is written
    here, atomically (a serve starting meanwhile reads the old or the new name, never half).
    """
    parsed = Tag.from_taglike(tag)
    if not registry.in_bento_store(str(parsed)):
        raise LifecycleError(f"{parsed} is not in the BentoML store")
    root = _store_root()
    temporary = root / f".{parsed.name}.latest.{os.getpid()}"
    temporary.write_text(str(parsed.version))
    os.replace(temporary, root / parsed.latest_path())
    resolved = str(bentoml.models.get(f"{parsed.name}:latest").tag)
    if resolved != str(parsed):  # a BentoML upgrade that resolves latest differently
        raise LifecycleError(f"{parsed.name}:latest resolves to {resolved}, not {parsed}")


def _restore_latest(model_name: str, version: str | None) -> None:
    if version and registry.in_bento_store(f"{model_name}:{version}"):
        serve_as_latest(f"{model_name}:{version}")


def ensure_twin(client: Any, model_name: str, version: str,
                alias: str = CHAMPION) -> tuple[str, bool]:
    """The version's BentoML tag, exported from MLflow first if the store lacks it."""
    mv = client.get_model_version(model_name, version)
    tag = mv.tags.get("bentoml_tag") or registry.bento_tag_for(model_name, version, mv.run_id)
    if registry.in_bento_store(tag):
        return tag, False
    registry.export_to_bentoml(client, model_name, version, alias)
    client.set_model_version_tag(model_name, version, "bentoml_tag", tag)
    return tag, True


def label_alias(tag: str, alias: str) -> None:
    """Set a twin's BentoML label `mlflow_alias`: the service picks its shadow challenger by
    it from the store alone (serving/shadow.py). BentoML has no API to change labels, so its
    model.yaml is rewritten, atomically (a serve reading it sees the old or the new)."""
    model = bentoml.models.get(tag)
    if model.info.labels.get("mlflow_alias") == alias:
        return
    object.__setattr__(model.info, "labels", {**model.info.labels, "mlflow_alias": alias})
    folder = Path(model.path)
    temporary = folder / f".model.yaml.{os.getpid()}"
    with temporary.open("w", encoding="utf-8") as stream:
        model.info.dump(stream)
    os.replace(temporary, folder / "model.yaml")


# --- history (pure functions, tested without stores) -------------------------------------

def pushed(history: list[str], version: str) -> list[str]:
    """The history after `version` becomes champion."""
    return history if history and history[-1] == version else [*history, version]


def rollback_target(history: list[str], to_version: str | None) -> tuple[str, list[str]]:
    """(version to return to, history after) for a rollback from the top of `history`."""
    if len(history) < 2:
        raise LifecycleError("no earlier champion to roll back to (history: "
                             f"{', '.join(history) or 'empty'}); use promote --version N")
    earlier = history[:-1]
    if to_version is None:
        return earlier[-1], earlier
    if to_version not in earlier:
        raise LifecycleError(f"version {to_version} is not an earlier champion (history, oldest "
                             f"first: {', '.join(history)}); use promote --version "
                             f"{to_version} to make it champion anyway")
    cut = len(earlier) - earlier[::-1].index(to_version)
    return to_version, earlier[:cut]


def history(client: Any, model_name: str) -> list[str]:
    """The champion history. A registry older than the tag is seeded, in version order,
    from the versions that were made champion; the current champion goes on top if the
    alias was moved by something else (the MLflow UI)."""
    try:
        model = client.get_registered_model(model_name)
    except MlflowException as exc:
        raise LifecycleError(f"no registered model '{model_name}' in MLflow at "
                             f"{redact_url(registry.tracking_uri())}") from exc
    raw = model.tags.get(HISTORY_TAG)
    if raw is None:
        versions = client.search_model_versions(f"name = '{model_name}'")
        found = [str(v.version) for v in versions if "champion.action" in v.tags
                 or str(v.tags.get("promotion", "")).startswith("promoted")]
        raw = ",".join(sorted(found, key=int))
    stack = [v for v in raw.split(",") if v]
    champion = registry.champion_version(client, model_name)
    return pushed(stack, str(champion.version)) if champion is not None else stack


def _write_history(client: Any, model_name: str, stack: list[str]) -> None:
    client.set_registered_model_tag(model_name, HISTORY_TAG, ",".join(stack[-HISTORY_LIMIT:]))


def _tag_champion(client: Any, model_name: str, version: str, *, action: str, by: str,
                  reason: str, previous: str | None) -> str:
    """Who, when, why and what it replaced, on the version that became champion."""
    at = datetime.now(UTC).isoformat(timespec="seconds")
    tags = {"champion.action": action, "champion.by": by, "champion.at": at,
            "champion.reason": reason, "previous_champion": previous or ""}
    for key, value in tags.items():
        client.set_model_version_tag(model_name, version, key, value)
    return at


def record_training_promotion(client: Any, model_name: str, version: str, reason: str) -> None:
    """After a training run moved the alias: the same tags and history as promote."""
    stack = history(client, model_name)  # the new champion is on top (the alias moved)
    previous = stack[-2] if len(stack) > 1 else None
    _tag_champion(client, model_name, version, action="train", by=operator(), reason=reason,
                  previous=previous)
    _write_history(client, model_name, stack)


# --- the operations ----------------------------------------------------------------------

def _make_champion(client: Any, model_name: str, version: str) -> tuple[str | None, str, bool]:
    """Move the alias, export the twin if missing, point NAME:latest at it; undo on failure."""
    try:
        client.get_model_version(model_name, version)
    except MlflowException as exc:
        raise LifecycleError(f"{model_name} has no version {version}") from exc
    current = registry.champion_version(client, model_name)
    previous = str(current.version) if current is not None else None
    pointer = latest_version(model_name)
    client.set_registered_model_alias(model_name, CHAMPION, version)
    try:
        tag, exported = ensure_twin(client, model_name, version)
        serve_as_latest(tag)
    except BaseException:
        if previous is not None:
            client.set_registered_model_alias(model_name, CHAMPION, previous)
        else:
            client.delete_registered_model_alias(model_name, CHAMPION)
        _restore_latest(model_name, pointer)
        raise
    return previous, tag, exported


def promote(client: Any, model_name: str, version: str, *, by: str | None = None,
            reason: str = "") -> Change:
    version = str(version)
    stack = history(client, model_name)  # before the alias moves: seeds it if needed
    already = alias_version(client, model_name, CHAMPION) == version
    previous, tag, exported = _make_champion(client, model_name, version)
    who, why = operator(by), reason or "(no reason given)"
    if already:  # nothing moved; the twin and NAME:latest were checked (and repaired)
        return Change(model_name, "promote", version, version, tag, exported, who, "", why)
    at = _tag_champion(client, model_name, version, action="promote", by=who, reason=why,
                       previous=previous)
    _write_history(client, model_name, pushed(stack, version))
    challenger = alias_version(client, model_name, CHALLENGER)
    if challenger == version:  # promoted: no longer a challenger
        client.delete_registered_model_alias(model_name, CHALLENGER)
        label_alias(tag, CHAMPION)  # nor is its twin: the shadow stops picking it
    return Change(model_name, "promote", version, previous, tag, exported, who, at, why)


def rollback(client: Any, model_name: str, to_version: str | None = None, *,
             by: str | None = None, reason: str = "") -> Change:
    stack = history(client, model_name)
    if registry.champion_version(client, model_name) is None:
        raise LifecycleError(f"{model_name} has no champion to roll back from")
    target, remaining = rollback_target(stack, None if to_version is None else str(to_version))
    previous, tag, exported = _make_champion(client, model_name, target)
    who, why = operator(by), reason or "(no reason given)"
    at = _tag_champion(client, model_name, target, action="rollback", by=who, reason=why,
                       previous=previous)
    if previous is not None:
        for key, value in {"rolled_back.by": who, "rolled_back.at": at,
                           "rolled_back.reason": why, "rolled_back.to": target}.items():
            client.set_model_version_tag(model_name, previous, key, value)
    _write_history(client, model_name, remaining)
    return Change(model_name, "rollback", target, previous, tag, exported, who, at, why)


def alias_version(client: Any, model_name: str, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(model_name, alias).version)
    except MlflowException:
        return None


def set_challenger(client: Any, model_name: str, version: str) -> str | None:
    """Give `version` the alias `challenger` and export its twin for shadow or canary use,
    leaving `NAME:latest` on the champion. Without a champion the twin is not exported (it
    would become NAME:latest); returns the twin's tag, or None."""
    client.set_registered_model_alias(model_name, CHALLENGER, version)
    champion = registry.champion_version(client, model_name)
    if champion is None:
        return None
    pointer = latest_version(model_name)
    try:
        tag, _ = ensure_twin(client, model_name, version, CHALLENGER)
    finally:  # the export made the challenger the newest model: latest goes back
        _restore_latest(model_name, pointer)
    for model in bentoml.models.list(model_name):  # exactly one twin is the challenger
        if str(model.tag) != tag and model.info.labels.get("mlflow_alias") == CHALLENGER:
            label_alias(str(model.tag), "none")
    label_alias(tag, CHALLENGER)
    return tag
