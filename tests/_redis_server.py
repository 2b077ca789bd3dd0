"""A real, throw-away `redis-server` on a free port, which tests may kill and restart."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path
from typing import NamedTuple


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# A NamedTuple, not a dataclass: bench/run.py loads this file by path, outside sys.modules.
class TlsFiles(NamedTuple):
    """The server's certificate and key, the CA it trusts for client certificates, and whether it asks
    clients for one (`--tls-auth-clients`)."""

    cert: Path
    key: Path
    ca: Path
    auth_clients: bool = False


def _answers_ping(port: int, tls: TlsFiles | None = None) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as raw:
            sock = raw
            if tls is not None:  # a probe: it only needs the server to answer, not to be trusted
                context = ssl.create_default_context(cafile=str(tls.ca))
                context.check_hostname = False
                if tls.auth_clients:
                    context.load_cert_chain(str(tls.cert), str(tls.key))
                sock = context.wrap_socket(raw)
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


class RedisServer:
    """`redis-server` without persistence in its own temp dir; `.kill()` is SIGKILL, `.restart()` keeps the port."""

    def __init__(
        self,
        binary: str | None = None,
        port: int | None = None,
        *,
        persistent: bool = False,
        password: str | None = None,
        tls: TlsFiles | None = None,
        unix_socket: bool = False,
    ) -> None:
        # persistent: an fsync-always append-only file, so a kill and restart keeps every acknowledged write.
        self.persistent = persistent
        self.password = password
        # With TLS the server listens on `port` for TLS connections only.
        self.tls = tls
        found = binary or os.environ.get("REDIS_SERVER") or shutil.which("redis-server")
        if not found:
            raise RuntimeError("redis-server is not installed (make redis-server installs it)")
        self.binary = found
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="durable-redis-"))
        # Also listen on a unix socket (`unix_path`), besides the port.
        self.unix_path = self.dir / "redis.sock" if unix_socket else None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        if self.tls is not None:
            return f"rediss://{auth}127.0.0.1:{self.port}/0?ssl_ca_certs={self.tls.ca}"
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout_s: float = 10.0) -> None:
        if self.running:
            return
        args = [self.binary, "--port", "0" if self.tls else str(self.port)]
        if self.tls is not None:
            args += ["--tls-port", str(self.port), "--tls-cert-file", str(self.tls.cert)]
            args += ["--tls-key-file", str(self.tls.key), "--tls-ca-cert-file", str(self.tls.ca)]
            args += ["--tls-auth-clients", "yes" if self.tls.auth_clients else "no"]
        args += [
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes" if self.persistent else "no",
        ]
        if self.persistent:
            args += ["--appendfsync", "always"]
        args += ["--dir", str(self.dir), "--protected-mode", "no", "--logfile", str(self.dir / "redis.log")]
        if self.password:
            args += ["--requirepass", self.password]
        if self.unix_path is not None:
            args += ["--unixsocket", str(self.unix_path), "--unixsocketperm", "700"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while not _answers_ping(self.port, self.tls):
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited with {self.proc.returncode}; see {self.dir / 'redis.log'}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"redis-server did not answer on port {self.port} within {timeout_s}s")
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no goodbye to clients."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
            self.proc = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
