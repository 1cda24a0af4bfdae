"""Reading the user's file, and writing it back (``--in-place``) without ever losing what is there.

A run takes seconds, so the file may change meanwhile: it is written only when it still holds
exactly what was read. Symlinks are followed (the target is edited). A file with one link is
replaced by renaming a finished copy over it, with its mode and owner, so no one sees it
half-written. A file with several hard links (or whose owner a copy cannot take) is rewritten in
place so that every link sees the change; a copy of its old content waits beside it until the
write is done, so even a crash mid-write loses nothing.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from dcoder.errors import DcoderError


def read_source(path: str) -> str:
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise DcoderError(f"file not found: {path}") from None
    except IsADirectoryError:
        raise DcoderError(f"{path} is a folder, not a file") from None
    except OSError as exc:
        raise DcoderError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DcoderError(f"{path} is not UTF-8 text (invalid byte at offset {exc.start})") from None


def _writable(path: str, st: os.stat_result) -> bool:
    # The mode bits too: root may write anywhere, but a file or folder marked read-only means "do not".
    return bool(st.st_mode & 0o222) and os.access(path, os.W_OK)


def check_writable(path: str) -> os.stat_result:
    """The stat of the file ``path`` names (symlinks followed); DcoderError when it cannot be written."""
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
        folder = os.path.dirname(real)
        folder_st = os.stat(folder)
    except FileNotFoundError:
        raise DcoderError(f"{path} was deleted during the run; nothing written") from None
    except OSError as exc:
        raise DcoderError(f"cannot write {path}: {exc.strerror}; nothing written") from None
    if not stat.S_ISREG(st.st_mode):
        raise DcoderError(f"{path} is not a regular file; nothing written")
    if not _writable(real, st):
        raise DcoderError(f"{path} is read-only; nothing written")
    if not _writable(folder, folder_st):  # the copy (or the backup) goes there
        raise DcoderError(f"cannot write {path}: its folder {folder} is read-only; nothing written")
    return st


def _unchanged(path: str, real: str, old: bytes) -> None:
    try:
        with open(real, "rb") as fh:
            now = fh.read()
    except FileNotFoundError:
        raise DcoderError(f"{path} was deleted during the run; nothing written") from None
    except OSError as exc:
        raise DcoderError(f"cannot read {path} again: {exc.strerror}; nothing written") from None
    if now != old:
        raise DcoderError(f"{path} changed during the run; nothing written (run dcoder again)")


def _copy(path: str, real: str, data: bytes, st: os.stat_result, keep_owner: bool) -> str | None:
    """A finished, synced file holding ``data`` beside ``real``, with its mode (and owner when
    ``keep_owner``); None when the owner cannot be given to it."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(real)}.", suffix=".dcoder", dir=os.path.dirname(real))
    except OSError as exc:
        raise DcoderError(f"cannot write {path}: {exc.strerror}; nothing written") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            if keep_owner and (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
                try:
                    os.fchown(fh.fileno(), st.st_uid, st.st_gid)
                except PermissionError:
                    os.unlink(tmp)
                    return None
            os.fchmod(fh.fileno(), stat.S_IMODE(st.st_mode))
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        return tmp
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise DcoderError(f"cannot write {path}: {exc.strerror}; nothing written") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _sync_folder(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a folder; the rename itself is done
    finally:
        os.close(fd)


def _rewrite_in_place(path: str, real: str, old: bytes, new: bytes, st: os.stat_result) -> None:
    backup = _copy(path, real, old, st, keep_owner=False)
    try:
        fd = os.open(real, os.O_RDWR)
    except OSError as exc:
        os.unlink(backup)
        raise DcoderError(f"cannot write {path}: {exc.strerror}; nothing written") from None
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        if os.fstat(fd).st_ino != st.st_ino or b"".join(chunks) != old:
            os.unlink(backup)
            raise DcoderError(f"{path} changed during the run; nothing written (run dcoder again)")
        try:
            _put(fd, new)
        except BaseException as exc:
            try:
                _put(fd, old)
            except OSError:
                raise DcoderError(f"cannot write {path} ({_why(exc)}); its old content is saved in {backup}") from None
            os.unlink(backup)
            if isinstance(exc, OSError):
                raise DcoderError(f"cannot write {path}: {exc.strerror}; left unchanged") from None
            raise
    finally:
        os.close(fd)
    os.unlink(backup)


def _put(fd: int, data: bytes) -> None:
    os.lseek(fd, 0, os.SEEK_SET)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.ftruncate(fd, len(data))
    os.fsync(fd)


def _why(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else exc.__class__.__name__


def write_back(path: str, original: str, text: str) -> None:
    """Replace the file's content ``original`` (what was read before the run) with ``text``.

    DcoderError, with nothing written, when the file changed or vanished meanwhile, or when it or
    its folder is read-only.
    """
    real = os.path.realpath(path)
    old = original.encode("utf-8")
    st = check_writable(path)
    _unchanged(path, real, old)
    new = text.encode("utf-8")
    if st.st_nlink == 1:
        tmp = _copy(path, real, new, st, keep_owner=True)
        if tmp is not None:
            try:
                _unchanged(path, real, old)  # once more, just before the rename
                os.replace(tmp, real)
            except BaseException as exc:
                Path(tmp).unlink(missing_ok=True)
                if isinstance(exc, OSError):
                    raise DcoderError(f"cannot write {path}: {exc.strerror}; nothing written") from None
                raise
            _sync_folder(os.path.dirname(real))
            return
    _rewrite_in_place(path, real, old, new, st)
