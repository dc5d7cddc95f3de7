"""`python -m training promote|rollback`: argument parsing and what to do next."""

from __future__ import annotations

import argparse
import logging
import os

from rich.console import Console
from rich.markup import escape

from training.lifecycle import Change, LifecycleError


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Change which registered version serves: moves the MLflow alias "
        "'champion', exports the BentoML twin if missing, makes it NAME:latest, and records "
        "who, when and why on the MLflow version.")
    commands = parser.add_subparsers(dest="command", required=True)
    promote = commands.add_parser("promote", help="make a registered version champion")
    promote.add_argument("--version", required=True, help="MLflow model version")
    rollback = commands.add_parser(
        "rollback", help="return to the previous champion (repeat to go further back)")
    rollback.add_argument("--to-version", help="an earlier champion to return to "
                          "(default: the one before the current champion)")
    for command in (promote, rollback):
        command.add_argument("--model", required=True,
                             help="registered model name, e.g. breast-cancer-classifier")
        command.add_argument("--reason", default="", help="why (recorded on the version)")
        command.add_argument("--by", help="who (recorded; default: the OS user)")
    return parser.parse_args(argv)


def next_steps(change: Change) -> list[str]:
    """What a running deployment must do to serve the new champion."""
    name, tag, version = change.model_name, change.bento_tag, change.version
    return [
        f"`bentoml serve` with MODEL_NAME={name} (or model_name in the serving config) "
        f"loads {name}:latest at start: restart it; one started with MODEL_TAG serves that "
        f"exact tag: set MODEL_TAG={tag}.",
        "An image carries one model (MODEL_TAG baked in): build and ship one for this "
        f"version: scripts/build-bento.sh {name} && scripts/containerize.sh "
        "REGISTRY/tabular-serving:TAG, push it, then in k8s/overlays/prod `kustomize edit "
        "set image localhost/tabular-serving=REGISTRY/tabular-serving:TAG` and "
        "`kubectl apply -k k8s/overlays/prod`.",
        f"If the Deployment ran an image of version {version} before, `kubectl -n NAMESPACE "
        "rollout undo deploy/tabular-serving [--to-revision R]` returns to it without a "
        "build (`kubectl rollout history` lists revisions); then check that GET /model_info "
        f"says mlflow_model_version {version}.",
    ]


def report(console: Console, change: Change) -> None:
    name = change.model_name
    if change.action == "promote" and change.previous == change.version:
        console.print(f"[bold]unchanged[/]: {name} version {change.version} is already "
                      f"champion; BentoML {change.bento_tag} is {name}:latest")
    else:
        was = f" (was version {change.previous})" if change.previous else ""
        verb = "rolled back to" if change.action == "rollback" else "promoted"
        console.print(f"[bold green]{verb}[/]: {name} version {change.version} is champion"
                      f"{was}; BentoML {change.bento_tag} is {name}:latest"
                      + (" (exported: it was missing)" if change.exported else ""))
        console.print(f"recorded on version {change.version}: by {escape(change.by)} at "
                      f"{change.at}: {escape(change.reason)}", highlight=False)
    console.print("[bold]next[/], for what is already running:")
    for step in next_steps(change):
        console.print(f"  - {escape(step)}", highlight=False)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    console = Console() if Console().is_terminal else Console(width=160)
    logging.basicConfig(level=logging.WARNING)  # MLflow and BentoML are chatty at INFO
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    import mlflow
    from mlflow.tracking import MlflowClient

    from training import lifecycle, registry

    uri = registry.tracking_uri()
    # The export of a missing twin loads models:/ URIs through MLflow's global settings,
    # whose default is not the project's store.
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(uri, uri)
    try:
        if args.command == "promote":
            change = lifecycle.promote(client, args.model, args.version, by=args.by,
                                       reason=args.reason)
        else:
            change = lifecycle.rollback(client, args.model, args.to_version, by=args.by,
                                        reason=args.reason)
    except LifecycleError as exc:
        console.print(f"[bold red]error[/]: {escape(str(exc))}", highlight=False)
        return 2
    report(console, change)
    return 0
