"""Files opened and written safely: atomic writes, and reads whose every failure is one
line for the user.

`atomic_write` is how embtk writes every model, vector file and checkpoint: the target
is either its old self or complete, never half written. `CheckedReader` reads a file's
bytes with every read bounds-checked, so a truncated or corrupt file is an error with its
offset, never an exception from deep inside struct or numpy. `available_memory` lets a
command refuse a size before allocating it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import struct
from typing import Iterator

from .errors import EmbtkError


def os_reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb", durable: bool = False) -> Iterator:
    """Yield a file object on a temporary file beside `path`; on success it is flushed
    and renamed over `path`. On any exception, KeyboardInterrupt included, the
    temporary file is removed and the exception re-raised, so `path` is either its old
    self or completely written, never half written.

    `durable` also fsyncs the file before the rename and its directory after it, so that
    the new file survives a power loss too. Models are saved without it, as fastText
    saves them: on ext4 the fsync of an 800 MB model costs ~0.5 s of waiting for the
    disk, as much as writing it, and a rename over an older file already has its data
    written first (auto_da_alloc). Checkpoints, whose point is to survive a crash, ask
    for it.
    """
    path = os.fsdecode(path)  # str, bytes or PathLike
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write mode must be 'wb' or 'w', not {mode!r}")
    shown = path
    if os.path.islink(path):
        path = os.path.realpath(path)  # replace the file the link points to, not the link
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise EmbtkError(f"cannot write {shown}: it is a directory")
    name = os.path.basename(path)

    fd, tmp = -1, ""
    for _ in range(100):
        tmp = os.path.join(directory, f".{name}.tmp-{secrets.token_hex(4)}")
        try:
            # 0o666 lets the user's umask decide the permissions, as for any new file.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:
            continue
        except OSError as exc:
            raise EmbtkError(f"cannot write {shown}: {os_reason(exc)}") from None
    else:  # pragma: no cover - 100 random collisions in a row
        raise EmbtkError(f"cannot write {shown}: cannot create a temporary file in {directory}")

    try:
        with contextlib.suppress(OSError):  # keep an overwritten file's permissions
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
        if mode == "wb":
            f = os.fdopen(fd, "wb")
        else:
            f = os.fdopen(fd, "w", encoding="utf-8", newline="")
        fd = -1  # now owned by f
        with f:
            yield f
            try:
                f.flush()
                if durable:
                    os.fsync(f.fileno())
            except OSError as exc:
                raise EmbtkError(f"cannot write {shown}: {os_reason(exc)}") from None
        try:
            os.replace(tmp, path)
        except OSError as exc:
            raise EmbtkError(f"cannot write {shown}: {os_reason(exc)}") from None
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    """Make the rename durable; best effort (not every platform or filesystem allows it)."""
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


class CheckedReader:
    """Bounds-checked reads from a buffer, each failure one EmbtkError."""

    def __init__(self, buf, path: str):
        self.buf = buf
        self.size = len(buf)
        self.path = path
        self.pos = 0

    def truncated(self, what: str) -> EmbtkError:
        return EmbtkError(
            f"{self.path} is truncated or corrupt (the file ends at byte {self.size} "
            f"while reading {what} at byte {self.pos})")

    def corrupt(self, what: str) -> EmbtkError:
        return EmbtkError(f"{self.path} is truncated or corrupt: {what}")

    def unpack(self, st: struct.Struct, what: str) -> tuple:
        if self.pos + st.size > self.size:
            raise self.truncated(what)
        values = st.unpack_from(self.buf, self.pos)
        self.pos += st.size
        return values

    def flag(self, what: str) -> bool:
        if self.pos >= self.size:
            raise self.truncated(what)
        value = self.buf[self.pos]
        if value not in (0, 1):
            raise self.corrupt(f"{what} at byte {self.pos} is {value}, not a boolean")
        self.pos += 1
        return bool(value)

    def remaining(self) -> int:
        return self.size - self.pos


def open_for_reading(path, what: str = ""):
    """Open a file the user named, for reading bytes; OS errors become one-line EmbtkErrors."""
    name = f"{what} {path}" if what else str(path)
    try:
        return open(path, "rb")
    except IsADirectoryError:
        raise EmbtkError(f"cannot read {name}: it is a directory") from None
    except FileNotFoundError:
        raise EmbtkError(f"cannot read {name}: no such file") from None
    except OSError as exc:
        raise EmbtkError(f"cannot read {name}: {os_reason(exc)}") from None


def available_memory() -> int:
    """Bytes of RAM available now (Linux's MemAvailable; free pages elsewhere), for
    refusing a size before allocating it."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62
