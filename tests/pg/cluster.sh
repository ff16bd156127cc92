#!/usr/bin/env bash
# tests/pg/cluster.sh start|stop [DIR] — a throwaway PostgreSQL cluster for the test suite.
#
# start: initdb + pg_ctl in a new temp dir (unix socket in that dir, a free TCP port on
# 127.0.0.1, scram-sha-256 password auth for every TCP login so the password paths are real), a
# test role and database; prints `export` lines for the tests (eval "$(tests/pg/cluster.sh start)"):
#   TASKPOOL_TEST_PG          postgresql:// URI of a database the tests may create schemas in
#   TASKPOOL_TEST_PG_ADMIN    superuser URI (pg_terminate_backend)
#   TASKPOOL_TEST_PG_RESTART  a command line that restarts the server (fast shutdown)
#   TASKPOOL_TEST_PG_DIR      the cluster's directory (stop removes it)
# If TASKPOOL_TEST_PG is already set (an existing server, or "skip"), it prints nothing and
# starts nothing. stop: stops the server and removes DIR (default $TASKPOOL_TEST_PG_DIR); a no-op
# without a dir. No network, no root needed; as root the server runs as `postgres` (runuser).
set -euo pipefail

PG_BIN="${TASKPOOL_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"
as_pg() {  # runs a server program as an unprivileged user
  if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
  if [[ -n "${TASKPOOL_TEST_PG:-}" ]]; then
    echo "cluster.sh: TASKPOOL_TEST_PG is set; using it, starting nothing" >&2
    return 0
  fi
  [[ -x "$PG_BIN/initdb" ]] || { echo "cluster.sh: no PostgreSQL server binaries (apt-get install postgresql)" >&2; exit 1; }
  local dir
  dir="$(mktemp -d /tmp/taskpool-pg.XXXXXX)"
  chmod 755 "$dir"
  [[ $(id -u) == 0 ]] && chown postgres: "$dir"
  local admin_pw test_pw
  admin_pw="adm$RANDOM$RANDOM$RANDOM"
  test_pw="tp$RANDOM$RANDOM$RANDOM"
  printf '%s\n' "$admin_pw" >"$dir/pwfile"
  [[ $(id -u) == 0 ]] && chown postgres: "$dir/pwfile"
  as_pg "$PG_BIN/initdb" -D "$dir/data" -U tp_admin --pwfile="$dir/pwfile" --auth-local=trust \
    --auth-host=scram-sha-256 -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; exit 1; }
  rm -f "$dir/pwfile"
  cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 64MB
log_min_messages = warning
CONF
  local port ok=0
  for _ in $(seq 1 20); do
    port=$((20000 + RANDOM % 40000))
    if as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "-p $port" -w -t 30 start >/dev/null 2>&1; then
      ok=1
      break
    fi
  done
  ((ok)) || { tail -n 20 "$dir/server.log" >&2; exit 1; }
  echo "$port" >"$dir/port"
  as_pg "$PG_BIN/psql" -X -q -h "$dir" -p "$port" -U tp_admin -d postgres -v ON_ERROR_STOP=1 <<SQL >&2
CREATE ROLE taskpool_test LOGIN PASSWORD '$test_pw';
CREATE DATABASE taskpool_test OWNER taskpool_test;
SQL
  local restart="$PG_BIN/pg_ctl -D $dir/data -l $dir/server.log -o '-p $port' -w -t 30 -m fast restart"
  [[ $(id -u) == 0 ]] && restart="runuser -u postgres -- $restart"
  echo "export TASKPOOL_TEST_PG='postgresql://taskpool_test:$test_pw@127.0.0.1:$port/taskpool_test'"
  echo "export TASKPOOL_TEST_PG_ADMIN='postgresql://tp_admin:$admin_pw@127.0.0.1:$port/postgres'"
  echo "export TASKPOOL_TEST_PG_RESTART=\"$restart\""
  echo "export TASKPOOL_TEST_PG_DIR='$dir'"
}

stop() {
  local dir="${1:-${TASKPOOL_TEST_PG_DIR:-}}"
  [[ -n "$dir" && -d "$dir/data" ]] || return 0
  as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:-}" ;;
  *) echo "usage: $0 start|stop [DIR]" >&2; exit 2 ;;
esac
