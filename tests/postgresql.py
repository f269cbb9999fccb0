"""A real PostgreSQL server for a test: `initdb` and `pg_ctl` in a temporary directory.

PostgreSQL refuses to run as root; as root (CI here) the server runs as `nobody` through
`runuser`. The binaries are looked up on PATH, in /usr/local/bin and in
/usr/lib/postgresql/<version>/bin; `skip_reason()` says why none can be used.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.servers import free_port


def _binary(name: str) -> str | None:
    candidates = [shutil.which(name), f"/usr/local/bin/{name}",
                  *sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def _as_server_user() -> list[str]:
    """The command prefix that runs a program as a user PostgreSQL accepts."""
    if os.geteuid() != 0:
        return []
    return [shutil.which("runuser") or "runuser", "-u", "nobody", "--"]


def skip_reason() -> str | None:
    missing = [name for name in ("initdb", "pg_ctl") if _binary(name) is None]
    if missing:
        return f"no PostgreSQL server binaries ({', '.join(missing)} not found)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: PostgreSQL refuses to run as root"
    return None


@contextlib.contextmanager
def running_postgresql() -> Iterator[str]:
    """Start a throw-away server on a free loopback port; yields its SQLAlchemy URL."""
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    # Not under pytest's tmp_path: its parents are private to root, where `nobody` cannot go.
    root = Path(tempfile.mkdtemp(prefix="lensserve-postgresql-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "nobody")
    prefix = _as_server_user()
    port = free_port()
    subprocess.run([*prefix, initdb, "-D", str(data), "-U", "postgres", "--auth=trust",
                    "--no-sync"], check=True, capture_output=True, timeout=120)
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run([*prefix, pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"),
                    "-w", "-t", "60", "start"], check=True, capture_output=True, timeout=120)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)
