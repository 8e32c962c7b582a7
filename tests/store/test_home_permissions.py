"""A home, key file or SQLite database another local user could have written is refused.

ssh's rule: owned by the current user (or root), writable by nobody else. Otherwise another
user could plant their own secret.key (and read every token sealed with it) or their own
database (a connection whose base URL is theirs). Every refusal names the path and the fix,
and happens before the secret is read or written.

The owner cases chown to `nobody` (65534) and so need root, which the suite runs as here.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from smslink.domain.models import Connection
from smslink.store import open_store, secrets
from smslink.store.location import database_url, smslink_home
from smslink.store.secrets import SecretBox, SecretError, UnsafePathError

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX owners and modes")

needs_root = pytest.mark.skipif(
    os.name == "nt" or os.geteuid() != 0, reason="chown to another user needs root"
)

OTHER_UID = 65534  # nobody
TOKEN = "f3a9c0ffee1234567890abcdef123456"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SMSLINK_HOME", "SMSLINK_DATABASE_URL", "SMSLINK_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An existing, safe home (0700, ours) named by SMSLINK_HOME; tests then spoil it."""
    path = tmp_path / "home"
    path.mkdir(mode=0o700)
    monkeypatch.setenv("SMSLINK_HOME", str(path))
    return path


@pytest.fixture
def no_key_read(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail the test if any file is read as bytes (the key file is read that way)."""

    def refuse(self: Path) -> bytes:
        raise AssertionError(f"{self} was read")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    yield


def _connection() -> Connection:
    return Connection(
        name="main", account_sid="AC" + "0" * 32, auth_token=TOKEN, from_number="+15005550006"
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- The home ----------------------------------------------------------------------------


def test_fresh_home_works_and_everything_is_owner_only(tmp_path: Path, monkeypatch):
    home = tmp_path / "new" / "home"
    monkeypatch.setenv("SMSLINK_HOME", str(home))
    store = open_store()
    try:
        store.catalogue.add_connection(_connection())
        assert store.catalogue.get_connection("main").auth_token == TOKEN
    finally:
        store.close()
    assert _mode(home) == 0o700
    assert _mode(home / "secret.key") == 0o600
    assert _mode(home / "smslink.db") == 0o600
    store = open_store()  # and again, with the files it made
    try:
        assert store.catalogue.get_connection("main").auth_token == TOKEN
    finally:
        store.close()


@pytest.mark.parametrize("mode", [0o700, 0o750, 0o755, 0o500])
def test_home_others_can_only_read_is_accepted(home: Path, mode: int):
    # Like ssh: readable is fine, the key file and the database are 0600 themselves.
    home.chmod(mode)
    assert smslink_home() == home


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o720, 0o702, 0o1777, 0o775])
def test_home_writable_by_others_is_refused(home: Path, mode: int):
    home.chmod(mode)
    with pytest.raises(UnsafePathError) as caught:
        smslink_home()
    message = str(caught.value)
    assert str(home) in message
    assert f"chmod 700 {home}" in message
    assert f"mode {mode:04o}" in message
    assert caught.value.path == home


def test_refusal_is_a_secret_error_so_the_cli_reports_it():
    assert issubclass(UnsafePathError, SecretError)


@needs_root
def test_home_owned_by_another_user_is_refused(home: Path):
    os.chown(home, OTHER_UID, OTHER_UID)
    with pytest.raises(UnsafePathError) as caught:
        smslink_home()
    message = str(caught.value)
    assert str(home) in message
    assert "owned by another user" in message
    assert f"chown root {home}" in message
    assert "SMSLINK_HOME" in message


def test_home_that_is_a_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "home"
    path.write_text("")
    monkeypatch.setenv("SMSLINK_HOME", str(path))
    with pytest.raises(UnsafePathError, match="not a directory"):
        smslink_home()


@needs_root
def test_files_owned_by_root_are_accepted_by_another_user(home: Path, monkeypatch):
    # As ssh: root can read everything anyway, so what root owns is trusted.
    key = Fernet.generate_key()
    (home / "secret.key").write_bytes(key)
    (home / "secret.key").chmod(0o600)
    db = _db(home)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # as if we were user 1000
    assert smslink_home() == home
    assert SecretBox(key).decrypt(SecretBox().encrypt(TOKEN)) == TOKEN
    _open(db)


def test_database_url_refuses_an_unsafe_home(home: Path):
    home.chmod(0o777)
    with pytest.raises(UnsafePathError):
        database_url()


@pytest.mark.usefixtures("no_key_read")
@pytest.mark.parametrize("explicit", [True, False], ids=["home given", "home from env"])
def test_unsafe_home_seals_nothing(home: Path, explicit: bool):
    home.chmod(0o777)
    box = SecretBox(home=home) if explicit else SecretBox()
    with pytest.raises(UnsafePathError):
        box.encrypt(TOKEN)
    with pytest.raises(UnsafePathError):
        box.decrypt("gAAAA")
    assert not (home / "secret.key").exists()  # no key created in it either


# --- The key file ------------------------------------------------------------------------


@needs_root
@pytest.mark.usefixtures("no_key_read")
def test_key_file_owned_by_another_user_is_refused_even_0600(home: Path):
    key_file = home / "secret.key"
    key_file.write_bytes(Fernet.generate_key())
    key_file.chmod(0o600)
    os.chown(key_file, OTHER_UID, OTHER_UID)
    with pytest.raises(UnsafePathError) as caught:
        SecretBox(home=home).encrypt(TOKEN)
    message = str(caught.value)
    assert str(key_file) in message
    assert "owned by another user" in message
    assert "move it away and let smslink create a new one" in message
    assert "chown" not in message  # a key of unknown origin is not to be adopted


@pytest.mark.usefixtures("no_key_read")
@pytest.mark.parametrize("mode", [0o660, 0o606, 0o644])
def test_key_file_others_can_access_is_refused_before_reading(home: Path, mode: int):
    key_file = home / "secret.key"
    key_file.write_bytes(b"x")
    key_file.chmod(mode)
    with pytest.raises(UnsafePathError, match=f"chmod 600 {key_file}"):
        SecretBox(home=home).encrypt(TOKEN)


# --- The SQLite database -----------------------------------------------------------------


def _db(folder: Path, mode: int = 0o600) -> Path:
    folder.mkdir(mode=0o700, exist_ok=True)
    db = folder / "smslink.db"
    db.write_bytes(b"")
    db.chmod(mode)
    return db


def _open(db: Path) -> None:
    store = open_store(f"sqlite:///{db}", secret_box=SecretBox(Fernet.generate_key()))
    store.close()


@pytest.mark.parametrize("mode", [0o666, 0o660, 0o620, 0o602])
def test_database_writable_by_others_is_refused_untouched(tmp_path: Path, mode: int):
    db = _db(tmp_path / "data", mode)
    with pytest.raises(UnsafePathError) as caught:
        _open(db)
    assert str(db) in str(caught.value)
    assert f"chmod 600 {db}" in str(caught.value)
    assert db.read_bytes() == b""  # no schema written: SQLite never opened it


def test_database_readable_by_others_is_accepted(tmp_path: Path):
    # Not a way in for others (their writes are what smslink must not trust); the file
    # smslink creates is 0600 anyway.
    _open(_db(tmp_path / "data", 0o644))


@needs_root
def test_database_owned_by_another_user_is_refused(tmp_path: Path):
    db = _db(tmp_path / "data")
    os.chown(db, OTHER_UID, OTHER_UID)
    with pytest.raises(UnsafePathError) as caught:
        _open(db)
    message = str(caught.value)
    assert str(db) in message
    assert "owned by another user" in message
    assert "move it away and let smslink create a new one" in message
    assert db.read_bytes() == b""


@needs_root
def test_default_database_in_home_owned_by_another_user_is_refused(home: Path):
    db = _db(home)
    os.chown(db, OTHER_UID, OTHER_UID)
    with pytest.raises(UnsafePathError, match=str(db)):
        open_store()


@pytest.mark.parametrize("suffix", ["-wal", "-shm", "-journal"])
def test_side_file_writable_by_others_is_refused(tmp_path: Path, suffix: str):
    db = _db(tmp_path / "data")
    side = db.with_name(db.name + suffix)
    side.write_bytes(b"")
    side.chmod(0o666)
    with pytest.raises(UnsafePathError) as caught:
        _open(db)
    assert str(side) in str(caught.value)
    assert f"chmod 600 {side}" in str(caught.value)


@needs_root
@pytest.mark.parametrize("suffix", ["-wal", "-journal"])
def test_side_file_owned_by_another_user_is_refused(tmp_path: Path, suffix: str):
    # SQLite replays a -wal or a hot -journal into the database when it opens it.
    db = _db(tmp_path / "data")
    side = db.with_name(db.name + suffix)
    side.write_bytes(b"")
    side.chmod(0o600)
    os.chown(side, OTHER_UID, OTHER_UID)
    with pytest.raises(UnsafePathError, match="owned by another user"):
        _open(db)


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o757])
def test_database_folder_writable_by_others_is_refused_before_creating(tmp_path: Path, mode: int):
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(mode)
    db = folder / "smslink.db"
    with pytest.raises(UnsafePathError) as caught:
        _open(db)
    assert str(folder) in str(caught.value)
    assert f"chmod go-w {folder}" in str(caught.value)
    assert not db.exists()


def test_database_in_a_sticky_shared_folder_is_accepted(tmp_path: Path):
    # Like /tmp: others may create files there but not rename or delete ours, and a file
    # they created first would be theirs, which is refused.
    folder = tmp_path / "tmp"
    folder.mkdir()
    folder.chmod(0o1777)
    _open(folder / "smslink.db")
    assert _mode(folder / "smslink.db") == 0o600


@needs_root
def test_database_folder_owned_by_another_user_is_refused(tmp_path: Path):
    folder = tmp_path / "theirs"
    folder.mkdir(mode=0o755)
    os.chown(folder, OTHER_UID, OTHER_UID)
    with pytest.raises(UnsafePathError, match="owned by another user"):
        _open(folder / "smslink.db")


def test_symlinked_database_is_judged_where_it_lives(tmp_path: Path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    (tmp_path / "mine").mkdir(mode=0o700)
    link = tmp_path / "mine" / "smslink.db"
    link.symlink_to(shared / "smslink.db")
    with pytest.raises(UnsafePathError, match=str(shared)):
        _open(link)


def test_new_database_folder_is_created_owner_only(tmp_path: Path):
    db = tmp_path / "a" / "b" / "smslink.db"
    _open(db)
    assert _mode(db.parent) == 0o700
    assert _mode(db) == 0o600


def test_windows_skips_the_posix_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # There the user profile's ACL protects the home; POSIX modes mean nothing.
    monkeypatch.setattr(secrets, "_CHECK_POSIX_MODES", False)
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o777)
    monkeypatch.setenv("SMSLINK_HOME", str(home))
    assert smslink_home() == home
    _open(_db(home, 0o666))


# --- The command line --------------------------------------------------------------------


def _spoil_home(home: Path) -> None:
    home.chmod(0o777)


def _spoil_db(home: Path) -> None:
    _db(home, 0o666)


@pytest.mark.parametrize("spoil", [_spoil_home, _spoil_db], ids=["home 0777", "database 0666"])
def test_cli_prints_one_error_line_and_exits_2(tmp_path: Path, spoil):
    home = tmp_path / "x"
    home.mkdir(mode=0o700)
    spoil(home)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMSLINK_", "TWILIO_"))}
    env.update({"SMSLINK_HOME": str(home), "COLUMNS": "1000"})
    done = subprocess.run(
        [sys.executable, "-m", "smslink", "connection", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error:")
    assert str(home) in lines[0]
    assert "chmod" in lines[0]
    assert not (home / "secret.key").exists()
