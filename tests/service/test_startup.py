"""Start-up without a model fails with a message that says what to run."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # `bentoml serve` (which fails at start)

ROOT = Path(__file__).resolve().parents[2]


def test_missing_model_fails_start_with_the_command_to_create_it(tmp_path) -> None:
    env = os.environ | {"BENTOML_HOME": str(tmp_path / "empty-store"),
                        "MODEL_NAME": "heart-disease-classifier"}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "bentoml"), "serve", "--host", "127.0.0.1",
         "--port", "3999"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "heart-disease-classifier:latest" in output
    assert "python -m training --dataset" in output
