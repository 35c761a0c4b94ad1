"""systemd credentials: how secrets reach goald without being written into goald.toml.

With `LoadCredential=database.url:/etc/goald/database.url` in the unit, systemd reads the file as
root before it starts goald, copies it into a private read-only directory that only the service's
(dynamic) user can read, and exports that directory as $CREDENTIALS_DIRECTORY. For each secret
setting of goald/settings.py, the file named after the setting (`database.url`) in that directory
supplies the value; any other file there is not goald's (systemd may put others) and is ignored.

Pure file reading for goald/config.py, which ranks a credential above goald.toml and below the
environment. Problems are returned as lines in config.py's style, never raised, and never contain
the value.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

DIRECTORY_ENV = "CREDENTIALS_DIRECTORY"


@dataclass(frozen=True)
class Credential:
    name: str   # the setting, which is also the credential's id ("database.url")
    value: str
    path: Path


def read(environ: Mapping[str, str], names: Iterable[str]) -> tuple[list[Credential], list[str]]:
    """The credentials present for `names`, and one problem line per credential that is unusable.

    The value is the file's text without one trailing newline (`echo` and editors add one). An
    empty file counts as absent: the unit's `SetCredential=database.url:\\n` fallback, used when no
    file exists, then leaves goald.toml and the defaults in charge.
    """
    directory = environ.get(DIRECTORY_ENV)
    if not directory:
        return [], []
    found: list[Credential] = []
    problems: list[str] = []
    for name in names:
        path = Path(directory) / name
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            continue
        except OSError as e:
            problems.append(f"{path}: cannot read credential {name}: {e.strerror}; pass it with "
                            f"LoadCredential={name}:<file> in the unit (systemd reads the file as root and "
                            f"gives goald its own copy), or make the file readable by the user running goald")
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            problems.append(f"{path}: credential {name} is not UTF-8 text; write the value alone, as text")
            continue
        value = text[:-1] if text.endswith("\n") else text
        if "\n" in value:
            problems.append(f"{path}: credential {name} has {value.count(chr(10)) + 1} lines; write the "
                            f"value alone on one line (one trailing newline is fine)")
            continue
        if value:
            found.append(Credential(name, value, path))
    return found, problems
