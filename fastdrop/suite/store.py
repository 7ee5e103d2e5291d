"""Results on disk: one JSON line per finished run, appended atomically, plus a manifest.

Each record is written with a single ``os.write`` on an ``O_APPEND`` descriptor and fsync'ed,
so a process killed at any moment (Ctrl-C, SIGKILL) leaves whole lines only; a torn last line
(power loss, full disk) is skipped when reading and fenced off before the next append. A rerun
skips every key already stored, so an interrupted sweep repeats nothing and loses only the
runs that were still in flight.
"""
import json
import os
import platform
import warnings
from pathlib import Path

RECORDS = "records.jsonl"
MANIFEST = "manifest.json"


class ResultStore:
    def __init__(self, root):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = self.root / RECORDS
        self._fence()

    def _fence(self):
        """Start the next record on a fresh line if a previous writer died mid-line."""
        if self.path.exists() and self.path.stat().st_size:
            with open(self.path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    self._write(b"\n")

    def _write(self, data):
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    def append(self, record):
        self._write((json.dumps(record, separators=(",", ":")) + "\n").encode())

    def records(self, kind=None):
        """All whole records (optionally of one kind), in the order they finished."""
        if not self.path.exists():
            return []
        out = []
        with open(self.path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    warnings.warn(f"{self.path}:{n}: skipping a torn record")
                    continue
                if kind is None or rec.get("kind") == kind:
                    out.append(rec)
        return out

    def keys(self):
        return {r["key"] for r in self.records()}

    def write_manifest(self, extra=None):
        """Versions, threads, BLAS and CPU of the machine that ran (rewritten atomically)."""
        from .. import build_info

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
