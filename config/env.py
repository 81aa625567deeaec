"""Typed readers for environment variables.

Every reader raises ``ImproperlyConfigured`` naming the variable when its value
cannot be used, so a bad deployment stops at start-up with a message that says
what to fix.
"""

import os
import secrets
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from django.core.exceptions import ImproperlyConfigured

TRUE_VALUES = {"1", "true", "yes", "on"}
FALSE_VALUES = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in TRUE_VALUES:
        return True
    if value in FALSE_VALUES:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false, 1/0), got {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_url(name: str, default: str = "", *, schemes: tuple[str, ...]) -> str:
    raw = os.environ.get(name, default).strip()
    if not raw:
        return ""
    parsed = urlparse(raw)
    if parsed.scheme not in schemes:
        allowed = ", ".join(f"{s}://" for s in schemes)
        raise ImproperlyConfigured(f"{name} must start with one of {allowed}; got {raw!r}")
    if parsed.scheme not in ("sqlite", "unix") and not parsed.hostname and not parsed.path:
        raise ImproperlyConfigured(f"{name} has no host: {raw!r}")
    return raw


def sqlite_config(path) -> dict:
    # The demo's web server and RQ worker write at the same time: WAL lets readers go on while
    # one writer writes, IMMEDIATE transactions take the write lock up front (no mid-transaction
    # "database is locked"), and the timeout makes a writer wait its turn instead of failing.
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        "OPTIONS": {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }


def database_config(name: str, default_sqlite_path: Path) -> dict:
    """Parse DATABASE_URL into Django's DATABASES entry (PostgreSQL or SQLite)."""
    raw = env_url(name, schemes=("postgres", "postgresql", "sqlite"))
    if not raw:
        return sqlite_config(default_sqlite_path)
    parsed = urlparse(raw)
    if parsed.scheme == "sqlite":
        # sqlite:///relative.db or sqlite:////absolute/path.db
        path = raw[len("sqlite:///"):] if raw.startswith("sqlite:///") else ""
        if not path:
            raise ImproperlyConfigured(f"{name} names no SQLite file: {raw!r}")
        return sqlite_config(path)
    db_name = parsed.path.lstrip("/")
    if not db_name:
        raise ImproperlyConfigured(f"{name} names no database: {raw!r} (expected postgres://user:pass@host:port/dbname)")
    try:
        port = parsed.port
    except ValueError:
        raise ImproperlyConfigured(f"{name} has an invalid port: {raw!r}") from None
    query = parse_qs(parsed.query)
    host = parsed.hostname or ""
    if "host" in query:  # unix socket directory: postgres://user@/db?host=/tmp/pg
        host = query["host"][0]
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": db_name,
        "USER": parsed.username or "",
        "PASSWORD": parsed.password or "",
        "HOST": host,
        "PORT": str(port or ""),
        "CONN_MAX_AGE": env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {},
    }


def secret_key(name: str, *, debug: bool, local_file: Path) -> str:
    """Read the secret key; in DEBUG only, create and keep one in a local file."""
    value = os.environ.get(name, "").strip()
    if value:
        if len(value) < 32:
            raise ImproperlyConfigured(f"{name} is too short: use at least 32 random characters")
        return value
    if not debug:
        raise ImproperlyConfigured(
            f"{name} is not set and DEBUG is off: set {name} to a long random string "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))')"
        )
    if local_file.exists():
        value = local_file.read_text().strip()
        if len(value) < 32:
            raise ImproperlyConfigured(f"{name}: {local_file} holds no usable key; delete it to have one generated")
        return value
    local_file.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(50)
    private_file_write(local_file, value + "\n")
    return value


def private_file_write(path: Path, text: str) -> None:
    """Create `path` readable by its owner only from the first byte (no window for others to read it)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
