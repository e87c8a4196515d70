"""A TCP proxy in front of Postgres that hangs a connection at a COMMIT: a half-open connection, or a server
that stops answering, which a refused or reset connection is not.

    with PostgresBlackhole(postgres.port, hang_at_commit=2) as proxy:
        env[LOGINS_POSTGRES_DSN] = proxy.dsn(env[LOGINS_POSTGRES_DSN])

The n-th COMMIT through the proxy (counted over all its connections) reaches the server, which commits it;
from then on nothing passes either way on that connection: the client never hears the answer, the server
never hears of anything after it, and both sockets stay open. The client's kernel sees its bytes
acknowledged, so TCP keepalives and tcp_user_timeout see nothing wrong: only a bound of the client's own
ends the wait. `hung` is set at the COMMIT, with `hung_at` its time.monotonic().
"""

import re
import socket
import threading
import time
from contextlib import suppress

from logins_pipeline.local.services import free_port

COMMIT = b"COMMIT\x00"  # the statement's text in a Query or Parse message: never in row data (no NUL there)


class PostgresBlackhole:
    def __init__(self, upstream_port: int, hang_at_commit: int):
        self.upstream_port, self.hang_at_commit = upstream_port, hang_at_commit
        self.port = free_port()
        self.hung = threading.Event()
        self.hung_at = 0.0
        self._commits = 0
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", self.port))

    def dsn(self, dsn: str) -> str:
        """`dsn` (a postgresql:// URI on 127.0.0.1) through the proxy."""
        return re.sub(r"@127\.0\.0\.1:\d+/", f"@127.0.0.1:{self.port}/", dsn)

    def __enter__(self) -> "PostgresBlackhole":
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            for sock in [self._listener, *self._sockets]:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            server = socket.create_connection(("127.0.0.1", self.upstream_port))
            with self._lock:
                self._sockets += [client, server]
            frozen = threading.Event()
            threading.Thread(target=self._pump, args=(client, server, frozen, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, frozen, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, frozen: threading.Event, to_server: bool) -> None:
        """Copy `source` to `target` until either closes; once `frozen`, read and drop."""
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if not data:
                if not frozen.is_set():
                    with suppress(OSError):
                        target.shutdown(socket.SHUT_WR)
                return
            if to_server and not frozen.is_set() and COMMIT in data and self._is_the_commit():
                frozen.set()  # before the COMMIT reaches the server: its answer is dropped
                with suppress(OSError):
                    target.sendall(data)
                continue
            if not frozen.is_set():
                with suppress(OSError):
                    target.sendall(data)

    def _is_the_commit(self) -> bool:
        with self._lock:
            self._commits += 1
            if self._commits != self.hang_at_commit:
                return False
        self.hung_at = time.monotonic()
        self.hung.set()
        return True
