"""End to end: the Bento builds, `bentoml containerize` builds the image from a local base
(no registry here), the image runs non-root on a read-only root, answers, stops cleanly,
and the dev overlay's Deployment runs under `podman kube play`.

Slow (about 3 minutes): the base image is made with debootstrap once per machine.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from loadtests.server import free_port
from tests.conftest import project_kubectl

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "localhost/tabular-python:3.11-bookworm"
IMAGE = "localhost/tabular-serving:e2e"
MAX_IMAGE_MB = 600
BUILD_SECRET = "build-env-secret-5a1c"
SECRET_NAMES = ("KEY", "SECRET", "TOKEN", "PASSWORD", "CREDENTIAL")
PODMAN_ENV = os.environ | {"CONTAINERS_CONF": str(ROOT / "container" / "containers.conf")}
WRITABLE = ["/tmp", "/home/bentoml/prometheus_multiproc_dir", "/home/bentoml/bentos",
            "/home/bentoml/models", "/home/bentoml/envs", "/home/bentoml/tmp"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        any(shutil.which(tool) is None for tool in ("podman", "buildah", "debootstrap")),
        reason="podman, buildah and debootstrap are needed: scripts/setup-system.sh installs them",
    ),
]


def run(*command: str, env: dict | None = None, timeout: float = 900) -> str:
    result = subprocess.run(command, cwd=ROOT, env=os.environ | (env or {}), text=True,
                            capture_output=True, timeout=timeout)
    assert result.returncode == 0, \
        f"{command}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def image(trained_store, tmp_path_factory) -> str:
    """The heart model's image, built the documented way (scripts)."""
    home = tmp_path_factory.mktemp("bento-home") / "bentoml"
    shutil.copytree(Path(os.environ["BENTOML_HOME"]) / "models" / "heart-disease-classifier",
                    home / "models" / "heart-disease-classifier")
    env = {"BENTOML_HOME": str(home), "CONTAINERS_CONF": str(ROOT / "container/containers.conf"),
           "API_KEY": BUILD_SECRET}  # set while building: must not reach the image
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    if bundle.is_file():  # builds here go through a TLS-intercepting proxy
        env["EXTRA_CA_BUNDLE"] = str(bundle)
    run("bash", "scripts/build-base-image.sh", BASE_IMAGE, env=env)
    run("bash", "scripts/build-bento.sh", "heart-disease-classifier",
        env=env | {"BASE_IMAGE": BASE_IMAGE})
    started = time.monotonic()
    run("bash", "scripts/containerize.sh", IMAGE, env=env)
    print(f"containerize: {time.monotonic() - started:.0f} s")
    podman("image", "prune", "-f")  # the images this tag pointed to before (465 MB each)
    return IMAGE


def podman(*args: str, timeout: float = 120) -> str:
    return run("podman", *args, env={"CONTAINERS_CONF": str(ROOT / "container/containers.conf")},
               timeout=timeout)


def wait_ready(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise AssertionError(f"{url} not ready after {timeout}s")


def heart_record() -> dict:
    return {"age": 63, "sex": 1, "cp": 1, "trestbps": 145.0, "chol": 233.0, "fbs": 1,
            "restecg": 2, "thalach": 150.0, "exang": 0, "oldpeak": 2.3, "slope": 3, "ca": 0,
            "thal": 6}


def test_image_is_small_and_runs_non_root(image) -> None:
    size = json.loads(podman("image", "inspect", image))[0]["Size"] / 1e6
    print(f"image size: {size:.0f} MB")
    assert size <= MAX_IMAGE_MB
    assert podman("run", "--rm", "--entrypoint", "id", image, "-u").strip() != "0"


def test_image_holds_no_secrets_and_only_locked_packages(image) -> None:
    config = json.loads(podman("image", "inspect", image))[0]["Config"]
    names = [entry.split("=", 1)[0] for entry in config.get("Env", [])]
    assert not [n for n in names if any(word in n.upper() for word in SECRET_NAMES)], names
    script = ("! find /home/bentoml/bento -name 'mlflow.db' -o -name '*.pem' -o -name '.env' "
              "-o -name 'mlruns' | grep . && "
              "python -c \"import importlib.metadata as m; "
              "print('\\n'.join(f\\\"{d.metadata['Name']}=={d.version}\\\" "
              "for d in m.distributions()))\"")
    installed = podman("run", "--rm", "--entrypoint", "sh", image, "-c", script).split()
    locked = {line.split("==")[0].lower().replace("_", "-"): line.split("==")[1]
              for line in (ROOT / "requirements.lock").read_text().splitlines()
              if "==" in line and not line.startswith("#")}
    assert len(installed) > 50
    for item in installed:
        name, version = item.split("==")
        assert locked.get(name.lower().replace("_", "-")) == version, item


def test_build_time_api_key_is_in_no_file_of_the_image(image, tmp_path) -> None:
    """API_KEY was set while the image was built: not one file of the whole filesystem
    (every layer, flattened by `podman export`), file name, image setting or history entry
    holds it."""
    secret = BUILD_SECRET.encode()
    metadata = podman("image", "inspect", image) + podman("history", "--no-trunc", image)
    assert BUILD_SECRET not in metadata
    name = f"tabular-secrets-{os.getpid()}"
    podman("create", "--name", name, image)
    try:
        export = subprocess.Popen(["podman", "export", name], stdout=subprocess.PIPE,
                                  env=PODMAN_ENV)
        files, found = 0, []
        with tarfile.open(fileobj=export.stdout, mode="r|") as tar:
            for member in tar:
                if secret in member.name.encode() or secret in member.linkname.encode():
                    found.append(member.name)
                if not member.isfile():
                    continue
                files += 1
                handle = tar.extractfile(member)
                tail = b""
                while chunk := handle.read(1 << 20):
                    if secret in tail + chunk:
                        found.append(member.name)
                        break
                    tail = chunk[-len(secret):]
        assert export.wait(timeout=300) == 0
    finally:
        subprocess.run(["podman", "rm", "-f", name], capture_output=True, env=PODMAN_ENV)
    print(f"searched {files} files")
    assert files > 10_000  # the whole filesystem: base system, venv, bento
    assert not found, f"the build-time API key is in {found}"


def held_back(body: bytes, release: threading.Event) -> Iterator[bytes]:
    """A request body sent all but its last bytes, the rest once `release` is set."""
    yield body[:-8]
    release.wait(120)
    yield body[-8:]


def test_image_answers_on_a_read_only_root_and_stops_cleanly(image, tmp_path) -> None:
    port = free_port()
    tmpfs = [arg for path in WRITABLE for arg in ("--tmpfs", f"{path}:rw,mode=1777")]
    name = f"tabular-e2e-{port}"
    # The requests below wait seconds for their own bodies: the image's config with a
    # max_wait_ms that lets them through (load shedding is not under test here).
    config = yaml.safe_load(podman("run", "--rm", "--entrypoint", "cat", image,
                                   "/home/bentoml/bento/src/configs/serving.yaml"))
    config["overload"]["max_wait_ms"] = 120_000
    (tmp_path / "serving.yaml").write_text(yaml.safe_dump(config))
    podman("run", "-d", "--name", name, "--read-only", *tmpfs, "-p", f"127.0.0.1:{port}:3000",
           "-v", f"{tmp_path / 'serving.yaml'}:/etc/tabular/serving.yaml:ro",
           "-e", "SERVING_CONFIG=/etc/tabular/serving.yaml", image)
    url = f"http://127.0.0.1:{port}"
    release = threading.Event()
    try:
        wait_ready(url)
        answer = httpx.post(f"{url}/predict", json=heart_record()).json()
        assert answer["model_name"] == "heart-disease-classifier"
        assert 0 <= answer["probability"] <= 1
        # No Evidently in the image: the on-demand drift check says where to run it.
        drift = httpx.post(f"{url}/drift/check")
        assert drift.status_code == 501, drift.text
        assert "python -m serving.drift" in drift.json()["error"]
        assert podman("run", "--rm", "--entrypoint", "python", image, "-c",
                      "import importlib.util as u; print(u.find_spec('evidently'))"
                      ).strip() == "None"

        # SIGTERM while 8 requests of 1,000 records are in flight: each connection is open
        # and its request under way for seconds before SIGTERM, and none can be answered
        # before it, since its body is complete only after it. Every one is answered.
        body = json.dumps({"records": [heart_record()] * 1000}).encode()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(httpx.post, f"{url}/predict_batch",
                                   content=held_back(body, release),
                                   headers={"Content-Type": "application/json"}, timeout=90)
                       for _ in range(8)]
            time.sleep(3)
            assert not any(f.done() for f in futures), [f.result() for f in futures if f.done()]
            started = time.monotonic()
            podman("kill", "--signal", "TERM", name)
            time.sleep(2)  # a request may take seconds: the grace period is 45 s in k8s/
            state = json.loads(podman("inspect", name))[0]["State"]
            assert state["Running"], "the container exited with requests in flight"
            release.set()
            answers = [f.result() for f in futures]
        assert [a.status_code for a in answers] == [200] * 8, [a.text[:200] for a in answers]
        assert all(len(a.json()["predictions"]) == 1000 for a in answers)
        assert podman("wait", name, timeout=60).strip() == "0"
        stopped = time.monotonic() - started
        assert stopped < 25, f"took {stopped:.0f}s to stop: SIGTERM was not handled"
        logs = podman("logs", name)
        assert "Service instance cleanup finalized" in logs or "cleanup" in logs.lower()
    finally:
        release.set()
        subprocess.run(["podman", "rm", "-f", name], capture_output=True, env=PODMAN_ENV)


def test_dev_overlay_deploys_with_podman_kube_play(image, tmp_path) -> None:
    rendered = subprocess.run([project_kubectl(), "kustomize", str(ROOT / "k8s/overlays/dev")],
                              capture_output=True, text=True, check=True).stdout
    objects = [o for o in yaml.safe_load_all(rendered) if o]
    config_map = next(o for o in objects if o["kind"] == "ConfigMap")
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    # The image sets MODEL_TAG to the model it contains, whatever the config's model_name.
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["image"] = image
    port = free_port()
    # podman has no cluster network here: publish on loopback.
    container["ports"][0] |= {"hostPort": port, "hostIP": "127.0.0.1"}
    manifest = tmp_path / "dev.yaml"
    manifest.write_text(yaml.safe_dump_all([config_map, deployment]))
    podman("kube", "play", str(manifest), timeout=180)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url)
        answer = httpx.post(f"{url}/predict", json=heart_record())
        assert answer.status_code == 200, answer.text
        assert answer.json()["model_name"] == "heart-disease-classifier"
    finally:
        subprocess.run(["podman", "kube", "down", str(manifest)], capture_output=True,
                       env=PODMAN_ENV)



def test_with_drift_bento_carries_evidently(trained_store, tmp_path) -> None:
    """WITH_DRIFT=1 scripts/build-bento.sh puts Evidently in the Bento, so its image runs the
    drift check itself. Only the Bento is built here: its image would download Evidently,
    plotly, pyarrow and statsmodels (about 370 MB) into an 830 MB image on every CI run."""
    home = tmp_path / "bentoml"
    shutil.copytree(Path(os.environ["BENTOML_HOME"]) / "models" / "heart-disease-classifier",
                    home / "models" / "heart-disease-classifier")
    env = {"BENTOML_HOME": str(home), "WITH_DRIFT": "1"}
    locked = next(line for line in (ROOT / "requirements.lock").read_text().splitlines()
                  if line.lower().startswith("evidently=="))
    try:
        run("bash", "scripts/build-bento.sh", "heart-disease-classifier", env=env)
    finally:  # the committed file is the slim image's: put it back
        run(".venv/bin/python", "scripts/serving_requirements.py")
    bento, = (home / "bentos" / "tabular-serving").glob("*/bento.yaml")
    requirements = (bento.parent / "env" / "python" / "requirements.txt").read_text()
    assert locked in requirements.splitlines()
    assert "plotly" in requirements and "statsmodels" in requirements
    # Without WITH_DRIFT (the image above): none of it.
    slim = (ROOT / "requirements-serving.txt").read_text().lower()
    assert "evidently" not in slim and "statsmodels" not in slim
