"""Automatic reinjection is on by default: the flag, its environment variable, and the state-file case."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pytest

from webhook import cli
from webhook.config import Settings
from webhook.server import Webhook


def settings_of(*args: str) -> Settings:
    return cli.settings_from(cli.build_parser().parse_args(["serve", *args]))


@pytest.mark.parametrize(
    ("args", "env", "on", "explicit"),
    [
        ((), None, True, False),  # the default
        (("--reinject",), None, True, True),
        (("--no-reinject",), None, False, False),
        ((), "true", True, True),
        ((), "false", False, False),
        ((), "", True, False),  # empty: as unset
        (("--reinject",), "false", True, True),  # the flag wins over the environment
        (("--no-reinject",), "true", False, False),
        (("--reinject-dry-run",), None, True, True),  # implies --reinject
        (("--no-reinject", "--reinject-dry-run"), None, True, True),
    ],
)
def test_reinject_flag_env_and_default(
    monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], env: str | None, on: bool, explicit: bool
) -> None:
    monkeypatch.delenv("REINJECT", raising=False)
    monkeypatch.delenv("REINJECT_DRY_RUN", raising=False)
    if env is not None:
        monkeypatch.setenv("REINJECT", env)
    settings = settings_of(*args)
    assert (settings.reinject, settings.reinject_explicit) == (on, explicit)


def test_settings_default_is_on() -> None:
    assert Settings().reinject is True and Settings().reinject_explicit is False


def test_help_says_on_by_default() -> None:
    parser = argparse.ArgumentParser()
    cli._serve_arguments(parser)
    text = " ".join(parser.format_help().split())
    assert "--reinject, --no-reinject" in text and "env REINJECT, default on" in text


@pytest.mark.parametrize(("explicit", "warned"), [(False, False), (True, True)])
def test_state_file_warns_only_when_reinject_was_asked_for(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, explicit: bool, warned: bool
) -> None:
    """With --state-file there is no cluster to restart anything in: reinjection stays off, and says so only
    to whoever asked for it; the default-on is silent."""
    webhook = Webhook(
        Settings(
            certs_dir=tmp_path, state_file=tmp_path / "state.yaml", reinject=True, reinject_explicit=explicit
        )
    )
    with caplog.at_level(logging.WARNING, logger="webhook.server"):
        webhook.start_reinjector()
    assert webhook.reinjector is None
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert bool([m for m in messages if "--reinject" in m]) is warned, messages
