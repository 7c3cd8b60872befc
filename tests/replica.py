"""A real streaming replica of the tests' PostgreSQL server, started by the test: `pg_basebackup -R` of the
server into a temporary folder, then the server's own major version of `postgres` on it, on a free port, as
a hot standby streaming from the server (Debian's binaries, /usr/lib/postgresql/<major>/bin).

The server must take replication connections from 127.0.0.1 (a `replication` line in pg_hba.conf: `.ci/run`
adds one) and keep a `wal_level` of `replica` (the default). As root, the replica runs as the server's OS
user, `postgres` (PostgreSQL refuses to run as root). Under REQUIRE_SERVICES=1 what is missing fails the
test instead of skipping it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from tests.processes import free_port
from tests.services import TEST_DATABASE_URL, require_tool, skip_or_fail, unavailable

BIN_DIR = "/usr/lib/postgresql/{major}/bin"
CATCH_UP_TIMEOUT_S = 30
# The settings a hot standby must have at least as high as its primary's (PostgreSQL refuses to start one
# with less): copied from the server.
AT_LEAST_THE_PRIMARYS = (
    "max_connections",
    "max_worker_processes",
    "max_wal_senders",
    "max_prepared_transactions",
    "max_locks_per_transaction",
)


@dataclass
class Replica:
    port: int
    data: Path
    pg_ctl: list[str]  # pg_ctl, as the user that runs the replica

    def url_of(self, database_url: str) -> str:
        """`database_url`'s database (on the primary) on the replica."""
        return make_url(database_url).set(host="127.0.0.1", port=self.port).render_as_string(False)

    @property
    def admin_url(self) -> str:
        return self.url_of(TEST_DATABASE_URL)

    async def pause(self) -> None:
        """Stop replaying the WAL (the replica still receives it): from now on it shows the primary as it
        was at this moment, however far the primary moves on."""
        async with await psycopg.AsyncConnection.connect(self.admin_url, autocommit=True) as conn:
            await conn.execute("SELECT pg_wal_replay_pause()")
            async with asyncio.timeout(CATCH_UP_TIMEOUT_S):
                query = "SELECT pg_get_wal_replay_pause_state()"
                while await _value(conn, query) != "paused":  # noqa: ASYNC110 (another server's replay)
                    await asyncio.sleep(0.01)

    async def resume(self) -> None:
        async with await psycopg.AsyncConnection.connect(self.admin_url, autocommit=True) as conn:
            await conn.execute("SELECT pg_wal_replay_resume()")

    async def catch_up(self) -> None:
        """Until the replica has replayed everything the primary had written when this was called."""
        async with await psycopg.AsyncConnection.connect(TEST_DATABASE_URL, autocommit=True) as primary:
            target = await _value(primary, "SELECT pg_current_wal_flush_lsn()")
        async with await psycopg.AsyncConnection.connect(self.admin_url, autocommit=True) as conn:
            async with asyncio.timeout(CATCH_UP_TIMEOUT_S):
                query = "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn"
                while not await _value(conn, query, target):  # noqa: ASYNC110 (another server's replay)
                    await asyncio.sleep(0.02)

    def stop(self) -> None:
        """Stop the replica at once (as a crash would); it stays stopped."""
        if (self.data / "postmaster.pid").exists():
            subprocess.run([*self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop"], check=True)


@contextmanager
def streaming_replica() -> Iterator[Replica]:
    """A hot standby of the tests' PostgreSQL server (TEST_DATABASE_URL), yielded once it takes connections
    (`catch_up` before reading a database created since the test began); stopped and deleted after."""
    major, settings = _primary()
    bin_dir = Path(BIN_DIR.format(major=major))
    install = f"apt-get install postgresql-{major} (the server's own major version)"
    pg_basebackup = require_tool("pg_basebackup", install, bin_dir / "pg_basebackup")
    pg_ctl = require_tool("pg_ctl", install, bin_dir / "pg_ctl")
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    # pytest's temporary folders are private to root: the replica's user must reach its own.
    folder = Path(tempfile.mkdtemp(prefix="order-engine-replica-"))
    folder.chmod(0o755)
    if as_postgres:
        shutil.chown(folder, "postgres")
    replica = Replica(free_port(), folder / "data", [*as_postgres, pg_ctl])
    try:
        backup = subprocess.run(
            [
                *as_postgres,
                pg_basebackup,
                f"--dbname={TEST_DATABASE_URL}",
                f"--pgdata={replica.data}",
                "--write-recovery-conf",  # standby.signal and primary_conninfo: a standby of the server
                "--wal-method=stream",
                "--checkpoint=fast",
            ],
            capture_output=True,
            text=True,
        )
        if backup.returncode != 0:
            skip_or_fail(
                "the PostgreSQL server refuses a base backup (it must take replication connections from"
                f" 127.0.0.1: pg_hba.conf, as .ci/run sets it): {backup.stderr.strip()}"
            )
        _configure(replica, folder, settings)
        started = subprocess.run(
            [*replica.pg_ctl, "-D", str(replica.data), "-l", str(folder / "replica.log"), "-w", "start"],
            capture_output=True,
            text=True,
        )
        if started.returncode != 0:
            log = (folder / "replica.log").read_text() if (folder / "replica.log").exists() else ""
            raise RuntimeError(f"the replica did not start: {started.stdout}{started.stderr}{log}")
        yield replica
    finally:
        replica.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _primary() -> tuple[int, dict[str, str]]:
    """The server's major version, and the settings its standby must match (AT_LEAST_THE_PRIMARYS)."""
    try:
        with psycopg.connect(TEST_DATABASE_URL, autocommit=True, connect_timeout=3) as conn:

            def show(name: str) -> str:
                return str(conn.execute(f"SHOW {name}").fetchall()[0][0])

            version, wal_level = int(show("server_version_num")), show("wal_level")
            settings = {name: show(name) for name in AT_LEAST_THE_PRIMARYS}
    except psycopg.OperationalError as error:
        unavailable("PostgreSQL", error)
    if wal_level == "minimal":
        skip_or_fail("the PostgreSQL server's wal_level is minimal: a replica needs replica (the default)")
    return version // 10000, settings


async def _value(conn: psycopg.AsyncConnection, query: str, *params: object) -> object:
    """The one value `query` returns."""
    return (await (await conn.execute(query, params or None)).fetchall())[0][0]


def _configure(replica: Replica, folder: Path, primary: dict[str, str]) -> None:
    """The standby's own configuration (Debian keeps the server's outside its data folder, so the backup has
    none): this port, sockets in its folder, everyone on 127.0.0.1 trusted, and no fsync (a test's)."""
    settings = {
        "port": str(replica.port),
        "listen_addresses": "'127.0.0.1'",
        "unix_socket_directories": f"'{folder}'",
        "hba_file": f"'{replica.data / 'pg_hba.conf'}'",
        "ident_file": f"'{replica.data / 'pg_ident.conf'}'",
        "hot_standby": "on",
        "fsync": "off",
        "shared_buffers": "'32MB'",
        **primary,
    }
    files = {
        "postgresql.conf": "".join(f"{name} = {value}\n" for name, value in settings.items()),
        "pg_hba.conf": "local all all trust\nhost all all 127.0.0.1/32 trust\n",
        "pg_ident.conf": "",
    }
    for name, text in files.items():
        (replica.data / name).write_text(text)
        if os.geteuid() == 0:
            shutil.chown(replica.data / name, "postgres")
