"""Start a real server (`bentoml serve`, or any command) on a free loopback port, wait until
it is ready, and stop it with SIGTERM at the end."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve_command(
    command: Callable[[int], list[str]], env: dict[str, str], log: Path, *,
    ready_path: str = "/readyz", timeout: float = 120,
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Run `command(port)`; yield (url, process) once GET ready_path answers 200."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("w") as out:
        process = subprocess.Popen(command(port), cwd=ROOT, env=os.environ | env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited {process.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{url}{ready_path}", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready after {timeout}s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url, process
    finally:
        _stop(process)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return  # already stopped (a test may SIGTERM it itself)
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def bentoml_command(target: str | None = None) -> Callable[[int], list[str]]:
    def command(port: int) -> list[str]:
        return [str(BIN / "bentoml"), "serve", *([target] if target else []),
                "--host", "127.0.0.1", "--port", str(port)]
    return command


@contextmanager
def bentoml_serve(env: dict[str, str], log: Path, timeout: float = 120) -> Iterator[str]:
    """Serve the repository's service (bentofile.yaml) with `env` added; yields its URL."""
    with serve_command(bentoml_command(), env, log, timeout=timeout) as (url, _):
        yield url
