"""Secrets at rest: Fernet with a key from the environment or an owner-only key file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from smslink.store.secrets import MASK, SecretBox, SecretError, mask

TOKEN = "f3a9c0ffee1234567890abcdef123456"


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SMSLINK_SECRET_KEY", raising=False)


def test_round_trip_and_ciphertext_hides_plaintext():
    box = SecretBox(Fernet.generate_key())
    sealed = box.encrypt(TOKEN)
    assert TOKEN not in sealed
    assert box.encrypt(TOKEN) != sealed  # Fernet is randomised: equal tokens do not show
    assert box.decrypt(sealed) == TOKEN


def test_key_file_created_on_first_use_with_mode_0600(tmp_path: Path):
    box = SecretBox(home=tmp_path)
    key_file = tmp_path / "secret.key"
    assert not key_file.exists()  # opening a store must not create keys nobody needed
    sealed = box.encrypt(TOKEN)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert SecretBox(home=tmp_path).decrypt(sealed) == TOKEN  # the same key next time
    assert [p.name for p in tmp_path.iterdir()] == ["secret.key"]  # no temp file left


def test_existing_key_file_wins(tmp_path: Path):
    key = Fernet.generate_key()
    key_file = tmp_path / "secret.key"
    key_file.write_bytes(key + b"\n")
    key_file.chmod(0o600)
    sealed = SecretBox(home=tmp_path).encrypt(TOKEN)
    assert SecretBox(key).decrypt(sealed) == TOKEN


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620])
def test_key_file_accessible_to_others_is_refused(tmp_path: Path, mode: int):
    key_file = tmp_path / "secret.key"
    key_file.write_bytes(Fernet.generate_key())
    key_file.chmod(mode)
    with pytest.raises(SecretError, match="chmod 600"):
        SecretBox(home=tmp_path).encrypt(TOKEN)


def test_env_key_is_used_and_no_file_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    key = Fernet.generate_key()
    monkeypatch.setenv("SMSLINK_SECRET_KEY", key.decode())
    sealed = SecretBox(home=tmp_path).encrypt(TOKEN)
    assert SecretBox(key).decrypt(sealed) == TOKEN
    assert not (tmp_path / "secret.key").exists()


def test_malformed_env_key_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SMSLINK_SECRET_KEY", "not-a-key")
    with pytest.raises(SecretError, match="SMSLINK_SECRET_KEY is not a valid Fernet key"):
        SecretBox(home=tmp_path).encrypt(TOKEN)


def test_wrong_key_says_what_probably_happened():
    sealed = SecretBox(Fernet.generate_key()).encrypt(TOKEN)
    with pytest.raises(SecretError) as caught:
        SecretBox(Fernet.generate_key()).decrypt(sealed)
    assert str(caught.value) == (
        "the stored auth token cannot be decrypted with this key: "
        "was SMSLINK_SECRET_KEY or secret.key changed?"
    )


def test_mask_reveals_nothing():
    assert mask(TOKEN) == MASK
    assert mask("ab") == MASK  # not even the length
    assert not set(TOKEN) & set(MASK)
    assert mask("") == ""
    assert mask(None) == ""
