"""Secrets: never shown, encrypted at rest, key files private from the first byte."""

from __future__ import annotations

import logging
import os
import pickle
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from salync_core.errors import ConfigError
from salync_core.secrets import KEY_ENV, RedactingFilter, Secret, SecretBox, create_key_file

VALUE = "sk-live-abcdef123456"


def test_a_secret_never_shows_itself() -> None:
    secret = Secret(VALUE)
    shown = [
        repr(secret),
        str(secret),
        f"{secret}",
        f"{secret!r}",
        repr([secret]),
        str({1: secret}),
    ]
    assert all(VALUE not in text for text in shown)
    assert repr(secret) == "Secret('****')"
    assert secret.reveal() == VALUE


def test_secrets_compare_and_hash_by_value() -> None:
    assert Secret(VALUE) == Secret(VALUE)
    assert Secret(VALUE) != Secret(VALUE + "x")
    assert Secret(VALUE) != VALUE
    assert len({Secret(VALUE), Secret(VALUE)}) == 1


def test_a_secret_refuses_to_be_pickled() -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(Secret(VALUE))


def test_round_trip_through_a_key_file(tmp_path: Path) -> None:
    box = SecretBox.load(create_key_file(tmp_path / "key"), environ={})
    token = box.encrypt(Secret(VALUE))
    assert VALUE.encode() not in token
    assert box.decrypt_secret(token) == Secret(VALUE)
    assert box.decrypt(box.encrypt(b"\x00bytes")) == b"\x00bytes"
    assert box.decrypt(box.encrypt("text")) == b"text"


def test_the_environment_key_wins_over_the_key_file(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    box = SecretBox.load(tmp_path / "missing", environ={KEY_ENV: key})
    assert SecretBox(Secret(key)).decrypt(box.encrypt("x")) == b"x"
    with pytest.raises(ConfigError, match=f"set {KEY_ENV} or create"):
        SecretBox.load(tmp_path / "missing", environ={})


def test_a_wrong_key_fails_clearly_without_showing_either_key(tmp_path: Path) -> None:
    right, wrong = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = SecretBox(Secret(right)).encrypt(VALUE)
    with pytest.raises(ConfigError, match="wrong secret key") as caught:
        SecretBox(Secret(wrong)).decrypt(token)
    assert right not in str(caught.value)
    assert wrong not in str(caught.value)
    assert caught.value.__cause__ is None


@pytest.mark.parametrize("bad", ["", "short", "x" * 44, "not base64 at all!!"])
def test_a_malformed_key_is_a_config_error_that_does_not_echo_it(bad: str) -> None:
    with pytest.raises(ConfigError, match="not a valid Fernet key") as caught:
        SecretBox(Secret(bad))
    assert not bad or bad not in str(caught.value)


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_the_key_file_is_0600_even_under_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = create_key_file(tmp_path / "key")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    Fernet(path.read_bytes())  # a valid key


def test_an_existing_key_file_is_never_overwritten(tmp_path: Path) -> None:
    path = create_key_file(tmp_path / "key")
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        create_key_file(path)
    assert path.read_bytes() == before


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = create_key_file(tmp_path / "key")
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        SecretBox.load(path, environ={})


def test_the_redacting_filter_masks_registered_values(caplog: pytest.LogCaptureFixture) -> None:
    caplog.handler.addFilter(RedactingFilter([Secret(VALUE), Secret("tiny")]))
    with caplog.at_level(logging.INFO, logger="salync.test"):
        logging.getLogger("salync.test").info("key=%s, tiny words stay", VALUE)
    assert caplog.messages == ["key=****, tiny words stay"]
