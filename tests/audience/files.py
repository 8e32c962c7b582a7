"""Writing audience files for the reader tests, and reading them back whole."""

from __future__ import annotations

from pathlib import Path

from smslink.audience.readers import AudienceRecord, open_audience


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    """`content` as the file `name` (text as UTF-8, bytes as they are)."""
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def read_all(path: Path, encoding: str | None = None) -> list[AudienceRecord]:
    with open_audience(path, encoding) as reader:
        return list(reader)
