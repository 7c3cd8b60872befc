"""A real PgBouncer in transaction mode in front of the test's PostgreSQL, started by the test on a free
port with its own ini in a temporary folder (`apt-get install pgbouncer`; `.ci/run` installs it)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

from tests.processes import free_port
from tests.services import require_tool

START_TIMEOUT_S = 30


@contextmanager
def pgbouncer(database_url: str, pool_size: int) -> Iterator[str]:
    """PgBouncer in transaction mode, `pool_size` server connections per database and user, in front of
    the server of `database_url`; yields the same database's URL through it."""
    binary = require_tool("pgbouncer", "apt-get install pgbouncer")
    server = make_url(database_url)
    port = free_port()
    # PgBouncer refuses to run as root: as root it is started as the PostgreSQL server's own user, which
    # must be able to read its folder (pytest's are private to root).
    folder = Path(tempfile.mkdtemp(prefix="order-engine-pgbouncer-"))
    folder.chmod(0o755)
    (folder / "userlist.txt").write_text(f'"{server.username}" ""\n')
    (folder / "pgbouncer.ini").write_text(
        f"""[databases]
* = host={server.host or "127.0.0.1"} port={server.port or 5432}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder / "userlist.txt"}
pool_mode = transaction
default_pool_size = {pool_size}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 1000
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
"""
    )
    for name in ("userlist.txt", "pgbouncer.ini"):
        (folder / name).chmod(0o644)
    as_user = ["-u", "postgres"] if os.geteuid() == 0 else []
    log = (folder / "pgbouncer.log").open("w")
    process = subprocess.Popen(
        [binary, *as_user, str(folder / "pgbouncer.ini")], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        _wait_for_port(port, process, folder / "pgbouncer.log")
        yield server.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def _wait_for_port(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:  # another process: trying to connect is the only way to know
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"pgbouncer did not listen on {port}: {log.read_text()}")
