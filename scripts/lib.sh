# Shared by scripts/run and scripts/test: a virtual environment and a reachable Redis.
# shellcheck shell=bash

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

setup_venv() {  # setup_venv [extras]: create .venv and install the project pinned by constraints.txt (again only when either changed)
  local extras=${1:-}
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), "leadscore needs Python 3.11+"' || exit 1
    "$PYTHON" -m venv "$VENV" || { echo "could not create a virtual environment: on Debian, apt-get install python3-venv" >&2; exit 1; }
  fi
  local stamp="$VENV/.leadscore-installed" want
  want="$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-64)${extras}"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "installing leadscore${extras:+[$extras]} and its dependencies into $VENV (a few minutes the first time)..."
    "$VENV/bin/python" -m pip install --quiet --upgrade pip 2>"$VENV/install.log" \
      || { tail -20 "$VENV/install.log" >&2; echo "could not upgrade pip in $VENV" >&2; exit 1; }
    # compat: a plain .pth entry for the project directory (no import hook, no setuptools warning)
    # constraints.txt: the versions the suite last passed with (scripts/write_constraints.py)
    if ! "$VENV/bin/python" -m pip install --progress-bar off -c constraints.txt -e ".${extras:+[$extras]}" --config-settings editable_mode=compat 2>&1 \
        | tee -a "$VENV/install.log" | { grep --line-buffered -E '^(Collecting|Successfully installed)' || true; } | sed -u 's/^/  /'; then
      tail -20 "$VENV/install.log" >&2
      echo "pip install failed; the whole log is $VENV/install.log" >&2
      exit 1
    fi
    echo "$want" > "$stamp"
  fi
}

apt_install() {  # apt_install PACKAGE: install a Debian package where that is permitted (root with apt-get)
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || return 1
  echo "installing $1 with apt-get..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1") >/dev/null
}

redis_reachable() {  # redis_reachable URL
  "$VENV/bin/python" - "$1" <<'PY' >/dev/null 2>&1
import sys, redis
redis.Redis.from_url(sys.argv[1], socket_connect_timeout=2).ping()
PY
}

ensure_redis() {  # ensure_redis URL: use a running Redis, else start a local one, else say what to do
  local url=$1
  redis_reachable "$url" && return 0
  case "$url" in
    redis://127.0.0.1*|redis://localhost*|redis://:*@127.0.0.1*|redis://:*@localhost*) ;;
    *) echo "Redis at ${url%%@*}... is not reachable, and it is not local, so it cannot be started here." >&2; exit 1 ;;
  esac
  if ! command -v redis-server >/dev/null 2>&1 && ! apt_install redis-server; then
    echo "No Redis is reachable and redis-server is not installed. Install it (sudo apt-get install redis-server)" >&2
    echo "or point LEADSCORE_BROKER_URL, LEADSCORE_RESULT_BACKEND and LEADSCORE_CACHE_URL at a Redis server." >&2
    exit 1
  fi
  local port
  port=$(echo "$url" | sed -E 's#^redis://([^@]*@)?[^:/]+:?([0-9]*).*#\2#')
  mkdir -p .run/redis
  # Append-only, fsync every second, never evict: broker keys must survive restarts and pressure.
  redis-server --daemonize yes --bind 127.0.0.1 --port "${port:-6379}" --dir "$PWD/.run/redis" \
    --appendonly yes --appendfsync everysec --maxmemory-policy noeviction --logfile "$PWD/.run/redis/redis.log"
  for _ in $(seq 50); do redis_reachable "$url" && { echo "started redis-server on port ${port:-6379}"; return 0; }; sleep 0.1; done
  echo "redis-server did not come up; see .run/redis/redis.log" >&2
  exit 1
}

amqp_reachable() {  # amqp_reachable URL
  "$VENV/bin/python" - "$1" <<'PY' >/dev/null 2>&1
import sys, kombu
with kombu.Connection(sys.argv[1], connect_timeout=3) as conn:
    conn.ensure_connection(max_retries=1)
PY
}

ensure_rabbitmq() {  # ensure_rabbitmq URL: use a running RabbitMQ, else start (or apt-get install) a local one
  local url=$1
  amqp_reachable "$url" && return 0
  if ! command -v rabbitmq-server >/dev/null 2>&1 && ! apt_install rabbitmq-server; then
    echo "RabbitMQ at ${url%%@*}... is not reachable and rabbitmq-server is not installed." >&2
    exit 1
  fi
  rabbitmq-server -detached >/dev/null 2>&1 || true
  for _ in $(seq 120); do amqp_reachable "$url" && { echo "started rabbitmq-server"; return 0; }; sleep 1; done
  echo "rabbitmq-server did not come up" >&2
  exit 1
}

pg_reachable() {  # pg_reachable SQLALCHEMY_URL
  "$VENV/bin/python" - "$1" <<'PY' >/dev/null 2>&1
import sys
from sqlalchemy import create_engine, text
engine = create_engine(sys.argv[1], connect_args={"connect_timeout": 3})
with engine.connect() as conn:
    conn.execute(text("SELECT 1"))
PY
}

pg_bindir() {  # pg_bindir: the directory holding initdb and pg_ctl (PATH first, then Debian's layout)
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then dirname "$(command -v pg_ctl)"; return 0; fi
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$found" ] && [ -x "$found/initdb" ] && echo "$found"
}

ensure_postgres() {  # ensure_postgres URL: use a running PostgreSQL, else start a throwaway local cluster, else say what to do
  local url=$1
  pg_reachable "$url" && return 0
  case "$url" in
    *@127.0.0.1*|*@localhost*) ;;
    *) echo "PostgreSQL at ${url%%@*}@... is not reachable, and it is not local, so it cannot be started here." >&2; exit 1 ;;
  esac
  local bin
  bin=$(pg_bindir) || true
  if [ -z "$bin" ] && apt_install postgresql; then bin=$(pg_bindir) || true; fi
  if [ -z "$bin" ]; then
    echo "No PostgreSQL is reachable at ${url%%@*}@... and initdb/pg_ctl are not installed. Install PostgreSQL" >&2
    echo "(sudo apt-get install postgresql) or point LEADSCORE_TEST_DATABASE_URL at a server (user with CREATEDB)." >&2
    exit 1
  fi
  # A throwaway cluster in a temporary directory, trust auth on loopback only; initdb refuses to run as root
  local port dir owner=()
  port=$(echo "$url" | sed -E 's#^[^/]*//[^/]*:([0-9]+)/.*#\1#; t; s#.*#5432#')
  dir=$(mktemp -d /tmp/leadscore-pg.XXXXXX)
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$dir"
    owner=(runuser -u postgres --)
  fi
  "${owner[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; echo "initdb failed" >&2; exit 1; }
  "${owner[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >/dev/null \
    || { tail -20 "$dir/postgres.log" >&2; echo "PostgreSQL did not start; see $dir/postgres.log" >&2; exit 1; }
  for _ in $(seq 50); do pg_reachable "$url" && { echo "started a throwaway PostgreSQL cluster in $dir on port $port (stop: $bin/pg_ctl -D $dir/data stop)"; return 0; }; sleep 0.1; done
  echo "PostgreSQL in $dir does not answer at ${url%%@*}@...; see $dir/postgres.log" >&2
  exit 1
}
