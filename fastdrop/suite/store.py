"""Results on disk: one JSON line per finished run, appended atomically, plus a manifest.

Each record is written with a single ``os.write`` on an ``O_APPEND`` descriptor and fsync'ed,
so a process killed at any moment (Ctrl-C, SIGKILL) leaves whole lines only; a short write
(full disk) is truncated away, and a torn last line (power loss) is skipped when reading and
fenced off before the next append. A rerun skips every key already stored, so an interrupted
sweep repeats nothing and loses only the runs that were still in flight. One process writes
a folder at a time (a lock file), and reading counts each key once.
"""
import errno
import json
import os
import platform
import warnings
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one writer is then the user's to ensure
    fcntl = None

RECORDS = "records.jsonl"
MANIFEST = "manifest.json"
LOCK = ".lock"


class StoreBusy(RuntimeError):
    """Another process is writing to this results folder."""


class ResultStore:
    """A results folder. Reading needs nothing; the first write makes the folder, takes its
    lock (an ``flock`` the OS drops when the owner exits, even by SIGKILL) and fences a torn
    last line. One process owns a folder at a time: a second gets :class:`StoreBusy`."""

    def __init__(self, root):
        self.root = Path(root)
        self.path = self.root / RECORDS
        self._lock_fd = None

    def acquire(self):
        """Own the folder now (idempotent); raises StoreBusy if another process does."""
        if self._lock_fd is not None:
            return self
        if self.root.exists() and not self.root.is_dir():
            raise NotADirectoryError(f"{self.root} exists and is not a folder")
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise StoreBusy(f"{self.root} is in use by another fastdrop process (pid "
                                f"{owner}); wait for it to finish, or choose another "
                                "--out") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd
        self._fence()
        return self

    def release(self):
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing drops the flock
            self._lock_fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()

    def __del__(self):
        self.release()

    def _fence(self):
        """Start the next record on a fresh line if a previous writer died mid-line."""
        if self.path.exists() and self.path.stat().st_size:
            with open(self.path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    self._write(b"\n")

    def _write(self, data):
        """All of ``data`` or nothing: a short write (a full disk) is undone before raising,
        so no torn line is left behind."""
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            try:
                written = 0
                while written < len(data):
                    n = os.write(fd, data[written:])
                    if n <= 0:
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
                    written += n
                os.fsync(fd)
            except BaseException:
                os.ftruncate(fd, size)
                raise
        finally:
            os.close(fd)

    def append(self, record):
        self.acquire()
        self._write((json.dumps(record, separators=(",", ":")) + "\n").encode())

    def records(self, kind=None):
        """Whole records (optionally of one kind), in the order they finished, one per key.

        Lines that are not records (torn, not JSON, not UTF-8, not an object with a ``key``)
        are skipped with a warning naming the file and line; a key stored twice (two
        processes on one folder before it had a lock) counts once, its first record."""
        if not self.path.exists():
            return []
        out, seen = [], set()
        with open(self.path, "rb") as f:
            for n, raw in enumerate(f, 1):
                rec = self._parse(raw, n)
                if rec is None or rec["key"] in seen:
                    continue
                seen.add(rec["key"])
                if kind is None or rec.get("kind") == kind:
                    out.append(rec)
        return out

    def _parse(self, raw, n):
        if not raw.strip():
            return None
        try:
            rec = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            return self._skip(n, "a line that is not UTF-8")
        except json.JSONDecodeError:
            return self._skip(n, "a torn record")
        if not isinstance(rec, dict) or not isinstance(rec.get("key"), str):
            return self._skip(n, f"a line that is not a record ({type(rec).__name__} "
                                 "without a 'key')")
        return rec

    def _skip(self, n, what):
        warnings.warn(f"{self.path}:{n}: skipping {what}")
        return None

    def keys(self):
        return {r["key"] for r in self.records()}

    def write_manifest(self, extra=None):
        """Versions, threads, BLAS and CPU of the machine that ran (rewritten atomically)."""
        from .. import build_info

        self.acquire()
        info = build_info()
        import numpy
        import sklearn

        manifest = {"fastdrop": info["fastdrop"], "numpy": numpy.__version__,
                    "scikit-learn": sklearn.__version__, "python": platform.python_version(),
                    "cpu": info["cpu"], "cores": os.cpu_count(), "threads": info["threads"],
                    "openmp": info["openmp"], "simd": info["simd"], "blas": info["blas"],
                    **(extra or {})}
        tmp = self.root / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=2, default=str))
        os.replace(tmp, self.root / MANIFEST)
        return manifest

    def manifest(self):
        path = self.root / MANIFEST
        return json.loads(path.read_text()) if path.exists() else {}
