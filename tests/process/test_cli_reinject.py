"""Automatic reinjection is on by default: the flag, its environment variable, and the state-file case."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from webhook import cli
from webhook.config import Settings
from webhook.server import Webhook


def settings_of(*args: str) -> Settings:
    return cli.settings_from(cli.build_parser().parse_args(["serve", *args]))


@pytest.mark.parametrize(
    ("args", "env", "on"),
    [
        ((), None, True),  # the default
        (("--reinject",), None, True),
        (("--no-reinject",), None, False),
        ((), "true", True),
        ((), "false", False),
        (("--reinject",), "false", True),  # the flag wins over the environment
        (("--no-reinject",), "true", False),
        (("--reinject-dry-run",), None, True),  # implies --reinject
        (("--no-reinject", "--reinject-dry-run"), None, True),
    ],
)
def test_reinject_flag_env_and_default(
    monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], env: str | None, on: bool
) -> None:
    monkeypatch.delenv("REINJECT", raising=False)
    monkeypatch.delenv("REINJECT_DRY_RUN", raising=False)
    if env is not None:
        monkeypatch.setenv("REINJECT", env)
    assert settings_of(*args).reinject is on


def test_settings_default_is_on() -> None:
    assert Settings().reinject is True


def test_help_says_on_by_default() -> None:
    text = " ".join(cli.build_parser()._subparsers._group_actions[0].choices["serve"].format_help().split())  # type: ignore[union-attr]
    assert "--reinject, --no-reinject" in text


def test_with_a_state_file_nothing_runs_in_the_background_and_nothing_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With --state-file there is no cluster to restart anything in: the default-on reinjection is silent."""
    state = tmp_path / "state.yaml"
    state.write_text("")
    webhook = Webhook(Settings(certs_dir=tmp_path, state_file=state, reinject=True))
    with caplog.at_level(logging.WARNING, logger="webhook.server"):
        webhook.start_background()
    assert webhook.background is None and webhook.manager is None
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
