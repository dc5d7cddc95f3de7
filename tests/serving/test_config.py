"""Serving settings: the YAML file is the one source of defaults; only the declared
environment variables override it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from serving.config import DEFAULT_CONFIG, ENV_OVERRIDES, load_serving_config, model_tag


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write a serving config (the repository's, edited) and point SERVING_CONFIG at it."""
    for variable in ENV_OVERRIDES:
        monkeypatch.delenv(variable, raising=False)

    def write(edit=lambda c: None) -> Path:
        config = yaml.safe_load(DEFAULT_CONFIG.read_text())
        edit(config)
        path = tmp_path / "serving.yaml"
        path.write_text(yaml.safe_dump(config))
        monkeypatch.setenv("SERVING_CONFIG", str(path))
        return path
    return write


def test_the_file_is_read_as_written(config_file) -> None:
    config_file(lambda c: c["overload"].update(max_in_flight=7))
    settings = load_serving_config()
    assert settings.overload.max_in_flight == 7
    assert settings.served_tag == "breast-cancer-classifier:latest"
    assert settings.bearer_key() is None


def test_a_missing_key_is_an_error_naming_it_not_a_code_default(config_file) -> None:
    config_file(lambda c: c["overload"].pop("max_wait_ms"))
    with pytest.raises(ValueError, match=r"overload\.max_wait_ms"):
        load_serving_config()


def test_unknown_keys_are_errors(config_file) -> None:
    config_file(lambda c: c["batching"].update(max_latncy_ms=5))
    with pytest.raises(ValueError, match="max_latncy_ms"):
        load_serving_config()


def test_declared_environment_variables_override_the_file(config_file, monkeypatch,
                                                          tmp_path) -> None:
    config_file()
    monkeypatch.setenv("BATCHING_MODE", "service")
    monkeypatch.setenv("CAPTURE_DIR", str(tmp_path / "cap"))
    monkeypatch.setenv("MODEL_NAME", "iris-classifier")
    settings = load_serving_config()
    assert settings.batching.mode == "service"
    assert settings.batching.max_batch_size == 1000  # the rest of the section stays
    assert settings.monitoring.capture_dir == (tmp_path / "cap").resolve()
    assert settings.served_tag == "iris-classifier:latest"
    monkeypatch.setenv("MODEL_TAG", "iris-classifier:v3-abc")  # an exact tag wins
    assert load_serving_config().served_tag == "iris-classifier:v3-abc"


def test_undeclared_or_empty_variables_change_nothing(config_file, monkeypatch) -> None:
    config_file()
    monkeypatch.setenv("TIMEOUT_S", "1")
    monkeypatch.setenv("MAX_BODY_BYTES", "5")
    monkeypatch.setenv("BATCHING_MODE", "")
    settings = load_serving_config()
    assert settings.timeout_s == 30 and settings.max_body_bytes == 4_000_000
    assert settings.batching.mode == "in_process"


def test_a_wrong_override_names_the_setting(config_file, monkeypatch) -> None:
    config_file()
    monkeypatch.setenv("BATCHING_MODE", "off")
    with pytest.raises(ValueError, match=r"batching\.mode"):
        load_serving_config()


def test_the_api_key_comes_from_the_environment_or_a_file(config_file, monkeypatch,
                                                          tmp_path) -> None:
    config_file()
    key_file = tmp_path / "key"
    key_file.write_text("from-file-key\n")
    monkeypatch.setenv("API_KEY_FILE", str(key_file))
    assert load_serving_config().bearer_key() == "from-file-key"
    monkeypatch.setenv("API_KEY", " from-env-key ")
    settings = load_serving_config()
    assert settings.bearer_key() == "from-env-key"
    assert "from-env-key" not in repr(settings)  # a secret, never printed


def test_a_key_in_the_file_is_refused(config_file) -> None:
    config_file(lambda c: c.update(api_key="in-the-file"))
    with pytest.raises(ValueError, match="only from the environment"):
        load_serving_config()


def test_model_tag_resolves_names_to_the_newest_champion() -> None:
    assert model_tag("iris-classifier") == "iris-classifier:latest"
    assert model_tag("iris-classifier:v2-abc") == "iris-classifier:v2-abc"


def test_a_missing_file_says_which(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("SERVING_CONFIG", str(tmp_path / "nope.yaml"))
    with pytest.raises(ValueError, match=r"nope\.yaml"):
        load_serving_config()
