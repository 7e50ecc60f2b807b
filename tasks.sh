#!/usr/bin/env bash
# evalsite's two commands (see README):
#   ./tasks.sh run    set up, then run the site, a worker and the demo on embedded defaults
#   ./tasks.sh test   set up, then run the whole test suite (SQLite, or PostgreSQL via DATABASE_URL)
# Everything it installs or starts is its own: .venv/, var/, and a redis-server it started itself.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
PYTHON=${PYTHON:-python3}
VENV=$ROOT/.venv
OWN_REDIS_PORT=${EVALSITE_REDIS_PORT:-6390}
STARTED_PIDS=()

say() { printf '\033[1m[evalsite]\033[0m %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

cleanup() {
  # Stop only what this script started, children first.
  for pid in "${STARTED_PIDS[@]:-}"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
  for pid in "${STARTED_PIDS[@]:-}"; do
    [ -n "$pid" ] && wait "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

can_apt() { command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; }
APT_UPDATED=0
apt_install() {
  can_apt || return 1
  if [ $APT_UPDATED = 0 ]; then apt-get update -qq >/dev/null && APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

setup_venv() {
  command -v "$PYTHON" >/dev/null || die "$PYTHON not found: install Python 3.11 (Debian: apt-get install python3 python3-venv)"
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating .venv"
    "$PYTHON" -m venv "$VENV" || die "could not create .venv (Debian: apt-get install python3-venv)"
  fi
  local want have
  want=$(sha256sum requirements.txt | cut -d' ' -f1)
  have=$(cat "$VENV/.requirements.sha256" 2>/dev/null || true)
  if [ "$want" != "$have" ]; then
    say "installing requirements into .venv (first time: a few minutes; log in var/pip-install.log)"
    mkdir -p var
    if ! { "$VENV/bin/pip" install --upgrade pip && "$VENV/bin/pip" install -r requirements.txt; } \
        > var/pip-install.log 2>&1; then
      tail -n 30 var/pip-install.log >&2
      die "installing the requirements failed (full log: var/pip-install.log)"
    fi
    echo "$want" > "$VENV/.requirements.sha256"
  fi
  export PATH="$VENV/bin:$PATH" HF_HUB_OFFLINE=1
}

redis_answers() { "$VENV/bin/python" -c "import redis,sys; redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1).ping()" "$1" >/dev/null 2>&1; }

ensure_redis() {
  local url=${REDIS_URL:-redis://127.0.0.1:6379/0}
  if redis_answers "$url"; then export REDIS_URL=$url; say "Redis: $url"; return; fi
  say "no Redis answers at $url; starting a private redis-server on port $OWN_REDIS_PORT (files in var/redis)"
  if ! command -v redis-server >/dev/null 2>&1; then
    apt_install redis-server || die "redis-server is missing and apt-get is not usable here: install Redis, or set REDIS_URL to a running one"
  fi
  mkdir -p var/redis
  redis-server --port "$OWN_REDIS_PORT" --bind 127.0.0.1 --dir "$ROOT/var/redis" --save "" --appendonly no \
    --logfile "$ROOT/var/redis/redis.log" &
  STARTED_PIDS+=($!)
  export REDIS_URL=redis://127.0.0.1:$OWN_REDIS_PORT/0
  for _ in $(seq 50); do redis_answers "$REDIS_URL" && { say "Redis: $REDIS_URL (started here)"; return; }; sleep 0.1; done
  die "the private redis-server did not answer; see var/redis/redis.log"
}

ensure_chromium() {
  [ -x /usr/bin/chromium ] && return
  say "installing Debian's chromium for the browser tests"
  apt_install chromium || say "WARNING: chromium is missing and apt-get is not usable: browser tests will be skipped"
}

# The unit tier (tests/unit, the Django-free core) runs in a pytest of its own without pytest-django, so a
# Django import in the core fails it; the integration and browser tiers run in a second pytest.
pytest_unit() { python -m pytest -p no:django -W ignore::pytest.PytestConfigWarning "$@"; }

cmd_test() {
  setup_venv
  ensure_redis
  ensure_chromium
  export DJANGO_ALLOW_ASYNC_UNSAFE=true
  say "database: ${DATABASE_URL:-SQLite (default)}"
  python manage.py check
  python manage.py makemigrations --check --dry-run >/dev/null || die "models and migrations differ: run makemigrations"
  ruff check .
  local contracts
  contracts=$(lint-imports --no-logo --no-cache 2>&1) || { echo "$contracts" >&2; die "an import-linter contract is broken (pyproject.toml, [tool.importlinter])"; }
  # ./tasks.sh test [unit|integration|browser] [pytest arguments or test paths]
  local unit=(tests/unit) django=(tests/integration tests/browser) opts=() a
  case "${1:-}" in
    unit) django=(); shift ;;
    integration|browser) unit=(); django=("tests/$1"); shift ;;
  esac
  local picked_unit=() picked_django=()
  for a in "$@"; do
    if [[ $a == tests/unit* ]]; then picked_unit+=("$a")
    elif [[ $a == tests/* ]]; then picked_django+=("$a")
    else opts+=("$a"); fi
  done
  if [ ${#picked_unit[@]} -gt 0 ] || [ ${#picked_django[@]} -gt 0 ]; then
    unit=("${picked_unit[@]}"); django=("${picked_django[@]}")
  fi
  # Exit code 5 is "no test collected" (a -m or -k that selects nothing in one tier): not a failure by
  # itself, but it is when no tier ran anything.
  local rc_unit=5 rc_django=5
  if [ ${#unit[@]} -gt 0 ]; then
    say "unit tier (without Django): ${unit[*]}"
    pytest_unit "${unit[@]}" "${opts[@]}" && rc_unit=0 || rc_unit=$?
  fi
  if [ ${#django[@]} -gt 0 ]; then
    say "integration and browser tiers: ${django[*]}"
    python -m pytest "${django[@]}" "${opts[@]}" && rc_django=0 || rc_django=$?
  fi
  if [ $rc_unit = 5 ] && [ $rc_django = 5 ]; then die "no test was collected"; fi
  for rc in $rc_unit $rc_django; do
    if [ "$rc" != 0 ] && [ "$rc" != 5 ]; then exit "$rc"; fi
  done
}

cmd_run() {
  setup_venv
  ensure_redis
  mkdir -p var
  python manage.py migrate --noinput
  python manage.py createcachetable  # the login rate limit's table
  python manage.py demo_setup
  local host=${EVALSITE_HOST:-127.0.0.1} port=${EVALSITE_PORT:-8000}
  say "starting two RQ workers: one for training, one for generation and short jobs"
  OMP_NUM_THREADS=${EVALSITE_TRAIN_THREADS:-2} python manage.py rqworker --worker-class rq.worker.SimpleWorker training &
  STARTED_PIDS+=($!)
  OMP_NUM_THREADS=1 python manage.py rqworker --worker-class rq.worker.SimpleWorker generation default &
  STARTED_PIDS+=($!)
  say "starting the web server on http://$host:$port/"
  python manage.py runserver --noreload "$host:$port" &
  STARTED_PIDS+=($!)
  sleep 2
  python manage.py demo_setup --print-logins --url "http://$host:$port"
  say "Ctrl-C stops the server, the worker and anything else this command started."
  wait -n "${STARTED_PIDS[@]}" || true
}

case "${1:-}" in
  run) shift; cmd_run "$@" ;;
  test) shift; cmd_test "$@" ;;
  *) echo "usage: ./tasks.sh run | test [pytest arguments]" >&2; exit 2 ;;
esac
