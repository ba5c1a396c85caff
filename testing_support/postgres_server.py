"""A private PostgreSQL server for tests and benchmarks: Debian's `postgresql`
package, a fresh cluster in a temp directory, listening only on a unix socket
there (no TCP port, nothing shared with another run).

PostgreSQL refuses to run as root, so as root the cluster belongs to the
package's `postgres` user (the directory is handed over to it).
"""
from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path


def find_postgres_bin() -> Path | None:
    """The directory with initdb and pg_ctl, or None when PostgreSQL is not installed."""
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


def _as_owner(command: list[str], owner: str | None) -> list[str]:
    return command if owner is None else ["runuser", "-u", owner, "--", *command]


class PostgresServer:
    def __init__(self, bin_dir: Path, directory: Path, owner: str | None):
        self.bin_dir, self.directory, self.owner = bin_dir, directory, owner
        self.data_dir = directory / "data"
        self.user = owner or pwd.getpwuid(os.getuid()).pw_name

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@/{database}?host={self.directory}"

    def create_database(self, prefix: str = "test") -> str:
        """A new empty database's URL."""
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(host=str(self.directory), user=self.user, dbname="postgres",
                             autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.url(name)

    def _run(self, *args: str) -> None:
        subprocess.run(_as_owner([str(self.bin_dir / args[0]), *args[1:]], self.owner),
                       check=True, capture_output=True, text=True)


@contextlib.contextmanager
def running_postgres(durable: bool = False):
    """Start a private server; yield a PostgresServer; stop and remove it after.

    `durable=False` turns fsync off (tests: speed); benchmarks pass True so
    commits cost what they cost in production.
    """
    bin_dir = find_postgres_bin()
    if bin_dir is None:
        raise FileNotFoundError("PostgreSQL is not installed (apt-get install postgresql)")
    owner = "postgres" if os.geteuid() == 0 else None
    directory = Path(tempfile.mkdtemp(prefix="pg-"))
    try:
        if owner:
            shutil.chown(directory, owner)
        server = PostgresServer(bin_dir, directory, owner)
        server._run("initdb", "-D", str(server.data_dir), "-A", "trust", "-U", server.user,
                    "--no-sync", "-E", "UTF8", "--locale=C")
        options = f"-k {directory} -c listen_addresses='' -c max_connections=200"
        if not durable:
            options += " -F"
        server._run("pg_ctl", "-D", str(server.data_dir), "-o", options, "-l",
                    str(directory / "server.log"), "-w", "-t", "60", "start")
        try:
            yield server
        finally:
            subprocess.run(_as_owner([str(bin_dir / "pg_ctl"), "-D", str(server.data_dir), "-m", "immediate",
                                      "-w", "stop"], owner), capture_output=True)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
