"""Settings from the environment and command-line overrides."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from aggregator.errors import ConfigError
from aggregator.settings import SETTINGS, Settings, render_env_example


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.database_url == "sqlite:///var/aggregator.db"
    assert settings.config_dir == Path("config")
    assert settings.public_url == "http://127.0.0.1:8080"
    assert settings.item_authority == "localhost"


def test_environment_and_overrides() -> None:
    settings = Settings.from_env(
        {
            "AGGREGATOR_DATABASE_URL": "postgresql://db/x",
            "AGGREGATOR_BASE_URL": "https://news.example.org/",
            "AGGREGATOR_PORT": "9000",
        }
    )
    assert settings.public_url == "https://news.example.org"
    assert settings.item_authority == "news.example.org"
    assert settings.port == 9000
    overridden = settings.with_overrides(
        database_url="sqlite:///x.db", config_dir="cfg", log_level=None
    )
    assert overridden.database_url == "sqlite:///x.db"
    assert overridden.config_dir == Path("cfg")
    assert overridden.log_level == "INFO"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AGGREGATOR_PORT", "eighty"),
        ("AGGREGATOR_PORT", "70000"),
        ("AGGREGATOR_FETCH_WORKERS", "0"),
        ("AGGREGATOR_BASE_URL", "news.example.org"),
        ("AGGREGATOR_LOG_LEVEL", "LOUD"),
        ("AGGREGATOR_CLUSTERING", "fuzzy"),
        ("AGGREGATOR_CLUSTERING_MAX_AGE_HOURS", "-1"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_unknown_variable_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        Settings.from_env({"AGGREGATOR_DATABSE_URL": "typo"})
    assert "AGGREGATOR_DATABSE_URL" in caplog.text


def test_every_setting_has_a_meaning() -> None:
    assert all(spec.meaning and spec.env.startswith("AGGREGATOR_") for spec in SETTINGS)
    assert {spec.name for spec in SETTINGS} == set(Settings.__dataclass_fields__)


def test_every_setting_is_in_the_env_example() -> None:
    example = Path(__file__).resolve().parents[2] / "deploy" / "aggregator.env.example"
    text = example.read_text(encoding="utf-8")
    missing = [spec.env for spec in SETTINGS if f"{spec.env}=" not in text]
    assert missing == []


def test_the_env_example_is_generated_from_the_settings_table() -> None:
    # Regenerate with: python -m aggregator.settings > deploy/aggregator.env.example
    example = Path(__file__).resolve().parents[2] / "deploy" / "aggregator.env.example"
    assert example.read_text(encoding="utf-8") == render_env_example()


def test_clustering_settings() -> None:
    default = Settings.from_env({})
    assert default.clustering == "semantic"
    assert default.clustering_max_age is not None
    assert default.clustering_max_age.total_seconds() == 72 * 3600
    exact = Settings.from_env(
        {"AGGREGATOR_CLUSTERING": "Exact", "AGGREGATOR_CLUSTERING_MAX_AGE_HOURS": "0"}
    )
    assert exact.clustering == "exact"
    assert exact.clustering_max_age is None
