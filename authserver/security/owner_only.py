"""Files and folders that only the server's own user may open: the SQLite database (client
secret hashes) and the signing keys.

New ones are created owner-only. Existing ones lose their group and other permission bits at
start-up, and nothing else: the owner's own bits are kept, so a read-only file stays
read-only. When that is refused (another user owns the file, a read-only mount) the server
still runs and the log says what stayed open; refusing to start would turn a permissions
slip into an outage.

The modes are passed to ``open``/``mkdir`` rather than set through the process umask: the
umask is shared by every thread of a process, so changing it around one call would also
change the files other threads create meanwhile.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from authserver.operator_log import warn

OWNER_ONLY_FOLDER = 0o700
OWNER_ONLY_FILE = 0o600
GROUP_AND_OTHER = 0o077


def create_folder(path: Path) -> None:
    """Create ``path`` 0700 if it does not exist (missing parents get the usual mode)."""
    path.mkdir(mode=OWNER_ONLY_FOLDER, parents=True, exist_ok=True)


def create_file(path: Path) -> bool:
    """Create ``path`` empty and 0600 unless it exists; True if this call created it.

    Created with its final mode in one step, so there is no moment in which another user
    could open it and keep reading through that descriptor after a later ``chmod``.
    """
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, OWNER_ONLY_FILE)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def tighten(path: Path, what: str) -> None:
    """Take group and other permissions off ``path`` (``what`` names it for the log).

    A missing path is left alone; a path whose mode cannot be changed is logged, not raised.
    """
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    except OSError as exc:
        _warn_still_open(path, what, exc)
        return
    if not mode & GROUP_AND_OTHER:
        return
    try:
        os.chmod(path, mode & ~GROUP_AND_OTHER)
    except OSError as exc:
        _warn_still_open(path, what, exc)


def _warn_still_open(path: Path, what: str, exc: OSError) -> None:
    warn(
        "permissions.not_tightened",
        f"cannot make {what} owner-only ({exc.strerror}); other users may be able to read it",
        path=str(path),
    )
