"""The CLIs' Dagster instance: $DAGSTER_HOME, else the one make dev uses under $PM_HOME."""

import yaml

from pm_jobs.instance import dagster_instance


def test_without_dagster_home_the_clis_use_pm_home_s_with_the_shipped_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", "")  # unset for the CLI; monkeypatch restores it afterwards
    monkeypatch.setenv("PM_HOME", str(tmp_path / "pm"))
    instance = dagster_instance()
    home = tmp_path / "pm" / "dagster_home"
    try:
        assert instance.root_directory == str(home)
        settings = yaml.safe_load((home / "dagster.yaml").read_text())
        assert settings["concurrency"]["pools"]["default_limit"] == 1
    finally:
        instance.dispose()


def test_dagster_home_wins_when_set(tmp_path, monkeypatch):
    (tmp_path / "dh").mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dh"))
    monkeypatch.setenv("PM_HOME", str(tmp_path / "pm"))
    instance = dagster_instance()
    try:
        assert instance.root_directory == str(tmp_path / "dh")
        assert not (tmp_path / "pm" / "dagster_home").exists()
    finally:
        instance.dispose()
