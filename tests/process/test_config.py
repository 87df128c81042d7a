"""Settings: field defaults from the options' declaration; bind addresses."""

from __future__ import annotations

import dataclasses

import pytest

from webhook import options
from webhook.config import Settings
from webhook.options import parse_bind


def test_every_settings_default_behind_an_option_is_the_declared_one():
    defaults = {f.name: f.default for f in dataclasses.fields(Settings)}
    for opt in options.OPTIONS:
        if opt.settings_field == "cert_mode":
            continue  # decided by --state-file: files without it
        assert defaults[opt.settings_field] == options.to_setting(opt, opt.default), opt.flag


def test_fields_without_an_option_are_not_configuration():
    behind_options = {opt.settings_field for opt in options.OPTIONS}
    rest = {f.name for f in dataclasses.fields(Settings)} - behind_options
    assert rest == {"dev_names", "cert_poll_interval", "state_poll_interval", "version"}


def test_settings_are_immutable_and_name_their_files(tmp_path):
    settings = Settings(certs_dir=tmp_path, cert_name="a.crt")
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.webhook_port = 1  # type: ignore[misc]
    assert (settings.cert_file, settings.key_file) == (tmp_path / "a.crt", tmp_path / "tls.key")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (":10080", ("0.0.0.0", 10080)),
        ("8080", ("0.0.0.0", 8080)),
        ("127.0.0.1:9", ("127.0.0.1", 9)),
        ("[::1]:8080", ("::1", 8080)),
        (" 0 ", ("0.0.0.0", 0)),
    ],
)
def test_bind_addresses(text, expected):
    assert parse_bind(text) == expected


@pytest.mark.parametrize("text", ["localhost", "host:port", ""])
def test_bad_bind_addresses_are_refused(text):
    with pytest.raises(ValueError, match="is not host:port"):
        parse_bind(text)
