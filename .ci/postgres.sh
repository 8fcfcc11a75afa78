#!/usr/bin/env bash
# A throwaway PostgreSQL for the tests: `bash .ci/postgres.sh COMMAND [ARGS...]` makes a cluster in a temporary
# folder, starts it on a free port listening on 127.0.0.1 only (password login, a random password), creates the
# database `publisher_test`, runs COMMAND with PUBLISHER_TEST_POSTGRES_URL set to it, then stops the server and
# deletes the folder (also when COMMAND fails or is interrupted). COMMAND's exit status is the script's.
# For the tests that restart the server mid-run (tests/store/test_postgres_restart.py) it also exports
# PUBLISHER_TEST_POSTGRES_DATA (the data folder), PUBLISHER_TEST_POSTGRES_PG_CTL (pg_ctl's path),
# PUBLISHER_TEST_POSTGRES_LOG (the server's log), PUBLISHER_TEST_POSTGRES_OPTIONS (the server's options, for
# `pg_ctl start -o` after a stop) and PUBLISHER_TEST_POSTGRES_AS_OWNER (the prefix that runs a command as the
# server's user: "runuser -u postgres --" as root, else empty).
#
#   bash .ci/postgres.sh .venv/bin/python -m pytest -q tests/store    # a developer with postgresql installed
#
# It needs initdb and pg_ctl (Debian: apt-get install postgresql; they live in /usr/lib/postgresql/*/bin). As
# root the server runs as the `postgres` user (PostgreSQL refuses to run as root); otherwise as the caller.
# When the server cannot be started, COMMAND still runs, with PUBLISHER_TEST_POSTGRES_PROBLEM saying why: the
# tests then skip their PostgreSQL half with that reason, or fail it under CI (tests/databases.py).
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: $0 COMMAND [ARGS...]" >&2
  exit 2
fi

folder=""
bindir=""
as_owner=()

stop() {
  if [ -n "$folder" ]; then
    if [ -n "$bindir" ] && [ -f "$folder/data/postmaster.pid" ]; then
      "${as_owner[@]}" "$bindir/pg_ctl" -D "$folder/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$folder"
  fi
}
trap stop EXIT
trap 'exit 130' INT TERM

# Sets `url` on success; on failure sets `problem` (the reason) and returns 1. Not run in a subshell, so that
# `stop` knows the folder and the server.
url=""
problem=""
options=""
start_server() {
  if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
    bindir="$(dirname "$(readlink -f "$(command -v pg_ctl)")")"
  else
    local candidate
    for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
      if [ -x "$candidate/initdb" ] && [ -x "$candidate/pg_ctl" ]; then bindir="$candidate"; break; fi
    done
  fi
  if [ -z "$bindir" ]; then
    problem="initdb and pg_ctl not found (Debian: apt-get install postgresql)"
    return 1
  fi
  if [ "$(id -u)" = 0 ]; then
    as_owner=(runuser -u postgres --)
  fi
  folder="$(mktemp -d "${TMPDIR:-/tmp}/publisher-pg.XXXXXX")"
  chmod 755 "$folder"   # the server's user reaches its data folder through this one
  mkdir "$folder/data"
  local password port
  password="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
  printf '%s\n' "$password" > "$folder/pwfile"
  if [ "${#as_owner[@]}" -gt 0 ]; then chown -R postgres: "$folder"; fi
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  # Password logins over TCP (what the URL uses, so the tests see a real password); trust on the socket only,
  # which lives in the temporary folder.
  if ! "${as_owner[@]}" "$bindir/initdb" -D "$folder/data" -U postgres --pwfile="$folder/pwfile" \
      --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >"$folder/initdb.log" 2>&1; then
    problem="initdb failed: $(tail -n 3 "$folder/initdb.log" | tr '\n' ' ')"
    return 1
  fi
  options="-p $port -k $folder -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300"
  if ! "${as_owner[@]}" "$bindir/pg_ctl" -D "$folder/data" -l "$folder/server.log" -w -t 60 \
      -o "$options" start >/dev/null; then
    problem="the server did not start: $(tail -n 3 "$folder/server.log" | tr '\n' ' ')"
    return 1
  fi
  if ! "${as_owner[@]}" "$bindir/psql" -h "$folder" -p "$port" -U postgres -d postgres -q -v ON_ERROR_STOP=1 \
      -c "CREATE DATABASE publisher_test" >/dev/null 2>"$folder/psql.log"; then
    problem="cannot create the test database: $(tr '\n' ' ' < "$folder/psql.log")"
    return 1
  fi
  url="postgresql://postgres:${password}@127.0.0.1:${port}/publisher_test"
}

if start_server; then
  export PUBLISHER_TEST_POSTGRES_URL="$url"
  export PUBLISHER_TEST_POSTGRES_DATA="$folder/data"
  export PUBLISHER_TEST_POSTGRES_PG_CTL="$bindir/pg_ctl"
  export PUBLISHER_TEST_POSTGRES_LOG="$folder/server.log"
  export PUBLISHER_TEST_POSTGRES_OPTIONS="$options"
  export PUBLISHER_TEST_POSTGRES_AS_OWNER="${as_owner[*]}"
  unset PUBLISHER_TEST_POSTGRES_PROBLEM
else
  echo "postgres.sh: no PostgreSQL for the tests: $problem" >&2
  export PUBLISHER_TEST_POSTGRES_PROBLEM="$problem"
  unset PUBLISHER_TEST_POSTGRES_URL PUBLISHER_TEST_POSTGRES_DATA PUBLISHER_TEST_POSTGRES_PG_CTL
  unset PUBLISHER_TEST_POSTGRES_LOG PUBLISHER_TEST_POSTGRES_OPTIONS PUBLISHER_TEST_POSTGRES_AS_OWNER
fi
set +e
"$@"
status=$?
set -e
exit "$status"
