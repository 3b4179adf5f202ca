#!/usr/bin/env bash
# Make sure PostgreSQL (127.0.0.1:5432, database `test`) and Redis (127.0.0.1:6379) answer, and that
# Debian's Chromium (/usr/bin/chromium) is installed for the browser tests.
# Starts them when they are installed but down; installs them (Debian/Ubuntu, apt) when missing.
# Idempotent: does nothing when both already answer.
set -euo pipefail

PG_DB="${XRAY_TEST_PG_DB:-test}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

wait_for() {  # wait_for NAME CHECK_FN
  for _ in $(seq 1 50); do "$2" && return 0; sleep 0.2; done
  echo "ensure-services: $1 did not come up on 127.0.0.1" >&2
  return 1
}

install_packages() {
  echo "ensure-services: installing $* with apt-get" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

# ---- PostgreSQL ------------------------------------------------------------------------------------
if ! pg_up; then
  fresh_install=0
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    install_packages postgresql
    fresh_install=1
  fi
  version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  if [ "$fresh_install" = 1 ]; then
    # Tests connect over TCP as `postgres` without a password, as on the CI machines.
    hba="/etc/postgresql/${version}/main/pg_hba.conf"
    $SUDO sed -i -E 's/^(host\s+all\s+all\s+127\.0\.0\.1\/32\s+)\S+/\1trust/' "$hba"
  fi
  echo "ensure-services: starting PostgreSQL ${version}" >&2
  $SUDO pg_ctlcluster --skip-systemctl-redirect "${version}" main start || true
  wait_for PostgreSQL pg_up
fi
if ! psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '${PG_DB}'" | grep -q 1; then
  psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE \"${PG_DB}\"" >/dev/null
fi

# ---- Redis -----------------------------------------------------------------------------------------
# Installed even when some Redis answers on 6379: the RedisCluster tests start their own nodes from
# redis-server and redis-cli (tests/runtime/test_redis_cluster.py).
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  install_packages redis-server
fi
if ! redis_up; then
  echo "ensure-services: starting Redis" >&2
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  wait_for Redis redis_up
fi
# ---- Chromium --------------------------------------------------------------------------------------
# The dashboard's browser tests (tests/web/test_browser.py) drive Debian's Chromium through Playwright;
# Playwright's own browser download (`playwright install`) is never used.
if [ ! -x /usr/bin/chromium ]; then
  install_packages chromium
fi
echo "ensure-services: PostgreSQL, Redis and Chromium are ready" >&2
