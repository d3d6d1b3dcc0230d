#!/usr/bin/env bash
# Portcullis benchmarks. Builds the release binary, serves it on a
# fresh temporary database with BCRYPT_COST=12, drives it with wrk over
# loopback and writes the results into BENCHMARKS.md (between the
# `bench:results` markers; the prose around them is kept).
#
#   bench/run.sh              SQLite (the default backend)
#   bench/run.sh --postgres   the same rows on a local PostgreSQL (a throwaway
#                             cluster this script starts, durable settings:
#                             fsync and synchronous_commit on), with pgbench
#                             running the rotation as the physical limit, plus
#                             two instances behind nginx (deploy/nginx.conf)
#
# Before the server starts it runs the raw rotation loop (the `rotation`
# bench target, benches/rotation.rs: the refresh's SQL over one connection, no
# HTTP), the physical limit the refresh run is compared to. With the server
# up, besides the steady runs, one session is refreshed 10,000 times in a
# chain while the database's rows are counted before and after (they must not
# grow), and the server is overloaded on purpose: two login floods of 64
# connections (more than the bcrypt queue holds, so most answers are
# immediate 503s) with low-rate probes on GET /protected, and logins beside a
# normal-priority CPU hog on every core.
#
# Settings (environment, all optional):
#   BENCH_DURATION=10        seconds per wrk run (at least 10)
#   BENCH_ROUNDS=3           rounds of healthz / bearer / cookie, interleaved;
#                            the ratios are the medians of each round's ratios
#   BENCH_LOGIN_DURATION=20  seconds of the login runs (bcrypt is slow: more samples)
#   BENCH_PORT=18080         loopback port for the server
#   BENCH_NO_BUILD=1         skip `cargo build --release` (binary must exist);
#                            the rotation bench is still brought up to date by
#                            `cargo bench --bench rotation --no-run` (a no-op
#                            when fresh), from this tree
#   BENCH_BIN=path           bench this binary instead (implies BENCH_NO_BUILD);
#                            the rotation bench is then the newest
#                            deps/rotation-* beside it, if not older than it
#                            (else that row says "not measured")
#   BENCH_ROTATION_BIN=path  run this rotation bench executable instead
#   BENCH_OUT=BENCHMARKS.md  where the results go ("-" prints only)
#   CARGO_TARGET_DIR         honoured, as cargo does
#   BENCH_PG_PORT=55499      --postgres: the cluster's loopback port
#
# Every load loop is bounded in time; only 127.0.0.1 is contacted. Needs wrk
# (Debian: apt-get install wrk), curl, jq, python3.
set -euo pipefail

BACKEND=sqlite
for arg in "$@"; do
  case $arg in
    --postgres) BACKEND=postgres ;;
    *) echo "usage: bench/run.sh [--postgres]" >&2; exit 2 ;;
  esac
done

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
DURATION=${BENCH_DURATION:-10}
ROUNDS=${BENCH_ROUNDS:-3}
LOGIN_DURATION=${BENCH_LOGIN_DURATION:-20}
PORT=${BENCH_PORT:-18080}
OUT=${BENCH_OUT:-$ROOT/BENCHMARKS.md}
PG_PORT=${BENCH_PG_PORT:-55499}
NGINX_PORT=$((PORT + 2))   # --postgres: nginx, in front of PORT and PORT + 1
CONNECTIONS=64
THREADS=2
LOGIN_CONNECTIONS_MAX=16 # throughput login: below the bcrypt queue, so no 503
HOG_CONNECTIONS=8        # logins beside the CPU hogs
SPRAY_USERS=1000         # distinct usernames in the spraying flood
CURL_SECS=8              # the sequential curl logins during that flood: at most
CURL_MAX=50              # this many, none started after CURL_SECS
ROTATION_SECS=5          # the raw rotation loop: seconds of each of its two
ROTATION_SESSIONS=64     # passes (per rotation, batched), over this many sessions
CHAIN_REFRESHES=10000    # one session refreshed this many times in a chain,
CHAIN_MAX_SECS=60        # within at most this many seconds
BASE="http://127.0.0.1:$PORT"
BENCH_USER=bench_user
BENCH_PASSWORD='Xk7-bench-Pw-91q'
export BENCH_DIR BENCH_USER BENCH_PASSWORD

die() { echo "bench: $*" >&2; exit 1; }

# Install what is missing (Debian packages), when allowed to.
missing=()
tools=(wrk curl jq python3)
[[ $BACKEND == postgres ]] && tools+=(nginx)
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [[ $BACKEND == postgres ]] && ! ls /usr/lib/postgresql/*/bin/pgbench >/dev/null 2>&1; then
  missing+=(postgresql)
fi
if (( ${#missing[@]} )) && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
  echo "bench: apt-get install -y ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; }
fi
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null || die "$tool is missing (Debian: apt-get install -y $tool)"
done
(( DURATION >= 10 )) || die "BENCH_DURATION must be at least 10 seconds"

# The command as it was typed, overrides included, for BENCHMARKS.md.
COMMAND="bench/run.sh"
[[ $BACKEND == postgres ]] && COMMAND="$COMMAND --postgres"
for var in BENCH_PG_PORT BENCH_DURATION BENCH_ROUNDS BENCH_LOGIN_DURATION BENCH_PORT BENCH_NO_BUILD BENCH_BIN \
  BENCH_ROTATION_BIN BENCH_OUT CARGO_TARGET_DIR; do
  if [[ -n ${!var:-} ]]; then COMMAND="$var=${!var} $COMMAND"; fi
done

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${BENCH_BIN:-$TARGET_DIR/release/portcullis}
if [[ -z ${BENCH_NO_BUILD:-} && -z ${BENCH_BIN:-} ]]; then
  echo "bench: cargo build --release" >&2
  (cd "$ROOT" && cargo build --release --quiet)
fi
[[ -x $BIN ]] || die "no release binary at $BIN"

# The rotation bench: built by cargo from this tree (the `bench` profile
# inherits the release one), found beside BENCH_BIN, or given. ROTATION_NOTE
# says why it is not measured, if it is not.
ROTATION_BIN=${BENCH_ROTATION_BIN:-}
ROTATION_NOTE=
build_rotation() {
  echo "bench: cargo bench --bench rotation --no-run" >&2
  local out
  out=$(cd "$ROOT" && cargo bench --bench rotation --no-run --quiet --message-format=json) || return 1
  jq -r 'select(.reason == "compiler-artifact" and .target.name == "rotation" and .executable != null)
         | .executable' <<<"$out" | tail -n1
}
if [[ $BACKEND == postgres ]]; then
  :   # the physical limit is pgbench's, below
elif [[ -n $ROTATION_BIN ]]; then
  [[ -x $ROTATION_BIN ]] || die "BENCH_ROTATION_BIN=$ROTATION_BIN is not an executable"
elif [[ -z ${BENCH_BIN:-} || $(realpath "$BIN") == "$(realpath -m "$TARGET_DIR/release/portcullis")" ]]; then
  ROTATION_BIN=$(build_rotation) || ROTATION_BIN=
  [[ -n $ROTATION_BIN ]] || ROTATION_NOTE="not measured: \`cargo bench --bench rotation --no-run\` failed"
else
  for candidate in "$(dirname "$BIN")"/deps/rotation-*; do
    [[ -f $candidate && -x $candidate && ! $candidate -ot $BIN ]] || continue
    [[ -n $ROTATION_BIN && $candidate -ot $ROTATION_BIN ]] || ROTATION_BIN=$candidate
  done
  [[ -n $ROTATION_BIN ]] || ROTATION_NOTE="not measured: no \`deps/rotation-*\` beside BENCH_BIN that is not older than it (build one there with \`cargo bench --bench rotation --no-run\`, or set BENCH_ROTATION_BIN)"
fi
[[ -z $ROTATION_NOTE ]] || echo "bench: raw rotation loop $ROTATION_NOTE" >&2

CORES=$(nproc)
TMP=$(mktemp -d /tmp/portcullis-bench.XXXXXX)
RESULTS=$TMP/results.txt
SERVER_PID=
SECOND_PID=  # --postgres: the second instance behind nginx
NGINX_PID=
PG_DIR=      # --postgres: the throwaway cluster
CHAIN_PID=   # the chain's wrk, while it runs in the background
HOG_PIDS=()
# CPU hogs, one per core, at normal priority. Each also stops by itself
# after $1 seconds (bash's SECONDS: no fork), should this script be killed.
start_hogs() {
  local i
  for i in $(seq "$CORES"); do
    bash -c 'while (( SECONDS < $1 )); do :; done' hog "$1" &
    HOG_PIDS+=($!)
  done
}
stop_hogs() {
  local pid
  for pid in "${HOG_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${HOG_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  HOG_PIDS=()
}
cleanup() {
  if (( ${#HOG_PIDS[@]} )); then stop_hogs; fi
  if [[ -n $CHAIN_PID ]]; then kill -TERM "$CHAIN_PID" 2>/dev/null || true; fi
  local pid
  for pid in "$NGINX_PID" "$SECOND_PID" "$SERVER_PID"; do
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  if [[ -n $PG_DIR ]]; then pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast stop >/dev/null 2>&1 || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

record() { echo "$1=$2" >>"$RESULTS"; }

# ---- machine ---------------------------------------------------------------
CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
record cores "$CORES"
record cpu_model "$CPU_MODEL"
record kernel "$(uname -r)"
record wrk_version "$(wrk -v 2>&1 | head -n1 | awk '{print $2}')"
record rustc "$(rustc --version 2>/dev/null || echo unknown)"
record git_rev "$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$ROOT" && git diff --quiet 2>/dev/null || echo '+dirty')"
record date "$(date -u '+%Y-%m-%d %H:%M UTC')"
record command "$COMMAND"
record duration "$DURATION"
record rounds "$ROUNDS"
record login_duration "$LOGIN_DURATION"
record load_before "$(cut -d' ' -f1-3 /proc/loadavg)"

# ---- CPU accounting: how much of the machine something else was using ------
# busy ticks of the whole machine (steal excluded), of the server, of the CPU
# hogs (while they run) and of finished children (wrk, curl); "other" =
# machine - server - hogs - wrk, in cores.
TICK=$(getconf CLK_TCK)
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
steal_ticks() { awk '/^cpu / {print $9}' /proc/stat; }  # taken by the hypervisor
# The server's CPU; with --postgres during the nginx runs also the second
# instance's and nginx's (its master and workers): all of "the site".
server_ticks() {   # 0 while no server runs (the raw rotation loop)
  if [[ -z $SERVER_PID ]]; then echo 0; return; fi
  local pid total=0 t
  for pid in "$SERVER_PID" $SECOND_PID $NGINX_PID $( [[ -n $NGINX_PID ]] && pgrep -P "$NGINX_PID" ); do
    t=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $12 + $13}') || true
    total=$((total + ${t:-0}))
  done
  echo "$total"
}
# --postgres: the cluster's CPU (the postmaster, its live backends, and the
# backends that exited, which the kernel adds to the postmaster's children
# time), so PostgreSQL shows as "db", not as "other".
db_ticks() {
  if [[ -z $PG_DIR || ! -f $PG_DIR/data/postmaster.pid ]]; then echo 0; return; fi
  local pm child total t
  pm=$(head -n1 "$PG_DIR/data/postmaster.pid")
  total=$(sed 's/.*) //' "/proc/$pm/stat" 2>/dev/null | awk '{print $12 + $13 + $14 + $15}') || total=0
  for child in $(pgrep -P "$pm" 2>/dev/null); do
    t=$(sed 's/.*) //' "/proc/$child/stat" 2>/dev/null | awk '{print $12 + $13}') || true
    total=$((total + ${t:-0}))
  done
  echo "${total:-0}"
}
hog_ticks() {
  local pid total=0 t
  for pid in "${HOG_PIDS[@]}"; do
    t=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $12 + $13}') || true
    total=$((total + ${t:-0}))
  done
  echo "$total"
}
# CPU time of this shell's finished children (the wrk runs), from the `times`
# builtin; it must run in this shell, not in a $(...) subshell, to see them.
children_ticks() {
  times >"$TMP/times"
  tail -n1 "$TMP/times" | awk -v t="$TICK" '{
    split($1, u, /[ms]/); split($2, s, /[ms]/); print int((u[1] * 60 + u[2] + s[1] * 60 + s[2]) * t) }' \
    >"$TMP/children_ticks"
  read -r CHILDREN_TICKS <"$TMP/children_ticks"
}
mark() {
  MARK_T=$(date +%s.%N); MARK_M=$(machine_ticks); MARK_S=$(server_ticks); MARK_ST=$(steal_ticks)
  MARK_H=$(hog_ticks); MARK_D=$(db_ticks)
  children_ticks; MARK_C=$CHILDREN_TICKS
}
# other_cores NAME: records NAME_{server,wrk,hog,other,steal}_cores since `mark`
other_cores() {
  local t m s c st h d
  t=$(date +%s.%N); m=$(machine_ticks); s=$(server_ticks); st=$(steal_ticks); h=$(hog_ticks); d=$(db_ticks)
  children_ticks; c=$CHILDREN_TICKS
  python3 - "$1" "$MARK_T" "$t" $((m - MARK_M)) $((s - MARK_S)) $((c - MARK_C)) $((st - MARK_ST)) \
    $((h - MARK_H)) $((d - MARK_D)) "$TICK" >>"$RESULTS" <<'EOF'
import sys
name, t0, t1, m, s, c, st, h, d, tick = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), *map(int, sys.argv[4:])
secs = t1 - t0
print(f"{name}_steal_cores={st / tick / secs:.2f}")
print(f"{name}_server_cores={s / tick / secs:.2f}")
print(f"{name}_wrk_cores={c / tick / secs:.2f}")
print(f"{name}_hog_cores={h / tick / secs:.2f}")
print(f"{name}_db_cores={d / tick / secs:.2f}")
print(f"{name}_other_cores={max(0, m - s - c - h - d) / tick / secs:.2f}")
EOF
}

# ---- --postgres: a throwaway cluster with durable settings ------------------
# Debian's PostgreSQL; initdb refuses root, so as root the cluster belongs to
# the `postgres` OS user. Defaults but for max_connections (instances' pools
# and pgbench's clients) and shared_buffers; fsync and synchronous_commit stay
# on, so a commit is as durable as SQLite's.
pg_as_owner() {
  if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}
psql_bench() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres "$@"; }
DB_URL=$TMP/bench.db
if [[ $BACKEND == postgres ]]; then
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
  PG_DIR=$TMP/pg
  mkdir -p "$PG_DIR"
  if [[ $(id -u) == 0 ]]; then chown postgres "$PG_DIR"; chmod 755 "$TMP"; fi
  echo "bench: starting PostgreSQL on 127.0.0.1:$PG_PORT" >&2
  pg_as_owner "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust >/dev/null
  pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c max_connections=200 -c shared_buffers=256MB" \
    start >/dev/null
  psql_bench -d postgres -c 'CREATE DATABASE bench' -c 'CREATE DATABASE pgbench_rotation'
  DB_URL=postgres://postgres@127.0.0.1:$PG_PORT/bench
  record pg_version "$("$PG_BIN/postgres" --version | awk '{print $3}')"
  record pg_settings "$(psql_bench -d postgres -At -c "SELECT string_agg(name || '=' || setting || COALESCE(unit, ''), ', ' ORDER BY name) FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'shared_buffers', 'max_connections', 'wal_level', 'full_page_writes')")"
fi
record backend "$BACKEND"

# ---- one bcrypt cost-12 hash, in this release binary ------------------------
echo "bench: timing bcrypt cost 12" >&2
HASH_S=$(cd "$TMP" && env -i PATH="$PATH" RUST_LOG=warn "$BIN" bcrypt-time --cost 12 --rounds 7)
record bcrypt_hash_s "$HASH_S"

# ---- the raw rotation loop: the physical limit of a refresh ------------------
# The same SQL as POST /token/refresh on the same schema, over one connection
# with the app's pragmas (benches/rotation.rs), on this run's temporary
# directory, before the server starts: one transaction per rotation (per_s),
# then one per pass over all sessions (batched_per_s, as the writer thread
# commits under load). Its CPU shows in the "wrk" column of `rotation`.
record rotation_secs "$ROTATION_SECS"
record rotation_sessions "$ROTATION_SESSIONS"
if [[ -n $ROTATION_BIN ]]; then
  echo "bench: raw rotation loop (2 × ${ROTATION_SECS}s, $ROTATION_SESSIONS sessions)" >&2
  mark
  env TMPDIR="$TMP" "$ROTATION_BIN" "$ROTATION_SECS" "$ROTATION_SESSIONS" \
    >"$TMP/rotation.out" 2>"$TMP/rotation.err" || true
  other_cores rotation
  line=$(grep -m1 '^rotations=.* per_s=.* batched_per_s=' "$TMP/rotation.out" || true)
  if [[ -n $line ]]; then
    for kv in $line; do record "rotation_${kv%%=*}" "${kv#*=}"; done
    record rotation_bin "${ROTATION_BIN#"$TARGET_DIR"/}"
  else
    cat "$TMP/rotation.out" "$TMP/rotation.err" >&2
    ROTATION_NOTE="not measured: $ROTATION_BIN printed no \`rotations=.. per_s=.. batched_per_s=..\` line"
  fi
fi
# PostgreSQL: pgbench runs the same statement (the conditional UPDATE of
# the session's generation joined with its user; bench/rotation.pgbench) on
# the same schema (the embedded migrations' SQL), at the refresh run's
# concurrency, on a database of its own on the same server.
if [[ $BACKEND == postgres ]]; then
  for up in "$ROOT"/migrations/postgres/*/up.sql; do psql_bench -d pgbench_rotation -f "$up"; done
  # Sessions that started now, as the refresh run's do: the rotation's cap at
  # SESSION_MAX_LIFETIME after the start (LEAST) must not end them.
  started=$(date +%s)
  psql_bench -d pgbench_rotation \
    -c "INSERT INTO users (username, password_hash, created_at) VALUES ('bench_user', 'x', 0)" \
    -c "INSERT INTO sessions (id, user_id, generation, created_at, last_used_at, rotated_at, expires_at, user_agent, ip)
        SELECT 'session-' || i, 1, 1, $started, $started, $started, 4000000000, 'bench', '127.0.0.1'
        FROM generate_series(1, $ROTATION_SESSIONS) AS i"
  echo "bench: pgbench rotation (${DURATION}s, $CONNECTIONS clients, $ROTATION_SESSIONS sessions)" >&2
  mark
  "$PG_BIN/pgbench" -n -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "$CONNECTIONS" -j "$THREADS" -T "$DURATION" \
    -D now="$(date +%s)" -D sessions="$ROTATION_SESSIONS" -f "$BENCH_DIR/rotation.pgbench" pgbench_rotation \
    >"$TMP/pgbench.out" 2>&1 || true
  other_cores rotation
  tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$TMP/pgbench.out")
  if [[ -n $tps ]]; then
    record rotation_per_s "$tps"
    record rotation_rotations "$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$TMP/pgbench.out")"
    record rotation_latency_ms "$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$TMP/pgbench.out")"
    record rotation_failed "$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$TMP/pgbench.out")"
  else
    cat "$TMP/pgbench.out" >&2
    ROTATION_NOTE="not measured: pgbench printed no tps line"
  fi
  # The same rotations 64 to a statement, one client: what one instance's
  # lane (src/db/rotations.rs) can reach when it always finds 64 queued.
  echo "bench: pgbench batched rotation (${DURATION}s, 1 client, 64 a statement)" >&2
  "$PG_BIN/pgbench" -n -h 127.0.0.1 -p "$PG_PORT" -U postgres -c 1 -j 1 -T "$DURATION" \
    -D now="$(date +%s)" -D sessions="$ROTATION_SESSIONS" -f "$BENCH_DIR/rotation_batch.pgbench" pgbench_rotation \
    >"$TMP/pgbench_batch.out" 2>&1 || true
  tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$TMP/pgbench_batch.out")
  if [[ -n $tps ]]; then
    record rotation_batched_per_s "$(python3 -c "print($tps * 64)")"
    record rotation_batched_latency_ms "$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$TMP/pgbench_batch.out")"
  else
    cat "$TMP/pgbench_batch.out" >&2
  fi
fi
record rotation_note "$ROTATION_NOTE"

# ---- start the server, time it to the first 200 ------------------------------
curl -s -o /dev/null --max-time 1 "$BASE/healthz" && die "something already listens on port $PORT (set BENCH_PORT)"

# A 200 from /healthz without forking per attempt: bash's /dev/tcp.
healthz_ok() {
  { exec 3<>"/dev/tcp/127.0.0.1/$PORT"; } 2>/dev/null || return 1
  printf 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
  local line=
  IFS= read -r -t 2 line <&3 || true
  exec 3<&- 3>&-
  [[ $line == "HTTP/1.1 200"* ]]
}

SECRET=$(head -c 48 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "bench: starting the server on $BASE" >&2
START_NS=$(date +%s%N)
(
  cd "$TMP"
  exec env -i PATH="$PATH" \
    BIND_ADDR="127.0.0.1:$PORT" \
    DATABASE_URL="$DB_URL" \
    APP_ENV=development \
    JWT_SECRET_KEY="$SECRET" \
    BCRYPT_COST=12 \
    LOGIN_MAX_FAILURES=1000000 \
    LOGIN_MAX_FAILURES_PER_IP=1000000000 \
    REGISTER_MAX_PER_IP=1000000000 \
    LOGIN_FAILURE_WINDOW=1 \
    REFRESH_REUSE_GRACE=0 \
    RUST_LOG=info \
    "$BIN" serve >"$TMP/server.log" 2>&1
) &
SERVER_PID=$!
until healthz_ok; do
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$TMP/server.log" >&2; die "the server exited"; }
  (( $(date +%s%N) - START_NS < 10000000000 )) || die "no 200 from /healthz within 10 s"
done
READY_NS=$(date +%s%N)
record startup_us "$(( (READY_NS - START_NS) / 1000 ))"

# The bcrypt queue the server sized at start-up from its own hash time (its
# log line "password hashing ready ... hash_ms=.. queue=..").
ready_line=$(grep -m1 'password hashing ready' "$TMP/server.log" || true)
QUEUE=$(sed -n 's/.* queue=\([0-9]*\).*/\1/p' <<<"$ready_line")
SERVER_HASH_MS=$(sed -n 's/.* hash_ms="\{0,1\}\([0-9.]*\).*/\1/p' <<<"$ready_line")
[[ -n $QUEUE ]] || die "no 'password hashing ready ... queue=N' line in the server log"
record hash_queue "$QUEUE"
record server_hash_ms "${SERVER_HASH_MS:-unknown}"
# The throughput login stays below the queue (no 503); the floods exceed it.
LOGIN_CONNECTIONS=$(( QUEUE - 4 < LOGIN_CONNECTIONS_MAX ? QUEUE - 4 : LOGIN_CONNECTIONS_MAX ))
(( LOGIN_CONNECTIONS >= THREADS )) || LOGIN_CONNECTIONS=$THREADS
(( CONNECTIONS > QUEUE )) || echo "bench: warning: the queue ($QUEUE) holds all $CONNECTIONS flood connections" >&2
record connections "$CONNECTIONS"
record login_connections "$LOGIN_CONNECTIONS"
record hog_connections "$HOG_CONNECTIONS"
record spray_users "$SPRAY_USERS"

# ---- a user, a session, the two ways of presenting an access token ----------
code=$(curl -s -o "$TMP/register.json" -w '%{http_code}' -H 'Content-Type: application/json' \
  -d "{\"username\":\"$BENCH_USER\",\"password\":\"$BENCH_PASSWORD\"}" "$BASE/register")
[[ $code == 201 ]] || die "register answered $code: $(cat "$TMP/register.json")"
code=$(curl -s -o "$TMP/login.json" -w '%{http_code}' -H 'Content-Type: application/json' \
  -d "{\"username\":\"$BENCH_USER\",\"password\":\"$BENCH_PASSWORD\"}" "$BASE/login")
[[ $code == 200 ]] || die "login answered $code"
ACCESS=$(jq -r .access_token "$TMP/login.json")

# The HTML page as a browser sees it: the access cookie plus the session
# cookie (CSRF token) the first visit hands out, sent back from then on.
curl -s -o /dev/null -D "$TMP/first.headers" -H "Cookie: access_token=$ACCESS" "$BASE/protected"
SESSION=$(grep -i '^set-cookie: portcullis_session=' "$TMP/first.headers" | head -n1 | sed 's/^[^=]*=//; s/;.*//' | tr -d '\r')
COOKIE="access_token=$ACCESS"
[[ -n $SESSION ]] && COOKIE="$COOKIE; portcullis_session=$SESSION"
# The same bytes under names the app does not read (same lengths).
FOREIGN_COOKIE=$(sed 's/access_token=/xccess_token=/; s/portcullis_session=/xortcullis_session=/' <<<"$COOKIE")
curl -s -o "$TMP/page.html" -D "$TMP/page.headers" -H "Cookie: $COOKIE" "$BASE/protected"
grep -q '^HTTP/1.1 200' "$TMP/page.headers" || die "cookie GET /protected is not a 200"
grep -q "Logged in as" "$TMP/page.html" || die "cookie GET /protected did not render the page"
record page_bytes "$(wc -c <"$TMP/page.html")"
record page_sets_cookie "$(grep -ci '^set-cookie' "$TMP/page.headers" || true)"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ACCESS" "$BASE/protected")
[[ $code == 200 ]] || die "Bearer GET /protected answered $code"

# ---- wrk runs ---------------------------------------------------------------
# run_wrk NAME DURATION CONNECTIONS THREADS [wrk options...] -- records NAME_*
run_wrk() {
  local name=$1 secs=$2 conns=$3 threads=$4
  shift 4
  echo "bench: $name (${secs}s, $conns connections)" >&2
  mark
  wrk -t"$threads" -c"$conns" -d"${secs}s" "$@" "$BASE" >"$TMP/$name.out" 2>&1 || true
  other_cores "$name"
  parse_wrk "$name"
}
parse_wrk() {
  local name=$1 line
  line=$(grep '^BENCH ' "$TMP/$1.out" || true)
  [[ -n $line ]] || { cat "$TMP/$name.out" >&2; die "wrk run $name printed no summary"; }
  for kv in ${line#BENCH }; do record "${name}_${kv%%=*}" "${kv#*=}"; done
}

# Interleaved rounds: a slow drift of the machine (other VMs, frequency)
# then moves a round's three runs together instead of skewing one ratio.
for round in $(seq "$ROUNDS"); do
  BENCH_PATH=/healthz \
    run_wrk "healthz_$round" "$DURATION" $CONNECTIONS $THREADS --timeout 10s -s "$BENCH_DIR/get.lua"
  BENCH_PATH=/protected BENCH_BEARER=$ACCESS \
    run_wrk "bearer_$round" "$DURATION" $CONNECTIONS $THREADS --timeout 10s -s "$BENCH_DIR/get.lua"
  BENCH_PATH=/protected BENCH_COOKIE=$COOKIE \
    run_wrk "cookie_$round" "$DURATION" $CONNECTIONS $THREADS --timeout 10s -s "$BENCH_DIR/get.lua"
  # Where the cookie page's cost goes: /healthz (whose handler reads nothing)
  # with the page's Cookie header byte for byte, first in a header that is
  # not Cookie (only the request's size differs from healthz), then as
  # cookies under names the app ignores (actix-web parses every cookie of the
  # header for the cookie session, which then finds none of its own), then
  # as they are (the cookie session decoded, the access token verified).
  BENCH_PATH=/healthz BENCH_PADDING=$COOKIE \
    run_wrk "healthz_padding_$round" "$DURATION" $CONNECTIONS $THREADS --timeout 10s -s "$BENCH_DIR/get.lua"
  BENCH_PATH=/healthz BENCH_COOKIE=$FOREIGN_COOKIE \
    run_wrk "healthz_bytes_$round" "$DURATION" $CONNECTIONS $THREADS --timeout 10s -s "$BENCH_DIR/get.lua"
  BENCH_PATH=/healthz BENCH_COOKIE=$COOKIE \
    run_wrk "healthz_cookies_$round" "$DURATION" $CONNECTIONS $THREADS --timeout 10s -s "$BENCH_DIR/get.lua"
done

# Logins at bcrypt's pace: fewer connections than the hash queue holds (16,
# or the queue less 4 if smaller), so every login waits its turn and none is
# refused, yet every bcrypt thread always has the next one waiting. Their
# refresh tokens seed the refresh run.
mkdir -p "$TMP/tokens"
BENCH_TOKENS_DIR=$TMP/tokens \
  run_wrk login "$LOGIN_DURATION" "$LOGIN_CONNECTIONS" $THREADS --timeout 60s -s "$BENCH_DIR/login.lua"

cat "$TMP"/tokens/tokens-*.txt >"$TMP/tokens.txt" 2>/dev/null || true
have=$(wc -l <"$TMP/tokens.txt")
while (( have < CONNECTIONS * 2 )); do   # top up, so every connection has a chain
  curl -s -H 'Content-Type: application/json' \
    -d "{\"username\":\"$BENCH_USER\",\"password\":\"$BENCH_PASSWORD\"}" "$BASE/login" |
    jq -r .refresh_token >>"$TMP/tokens.txt"
  have=$((have + 1))
done
record refresh_sessions "$have"
BENCH_TOKENS_FILE=$TMP/tokens.txt BENCH_THREADS=$THREADS \
  run_wrk refresh "$DURATION" $CONNECTIONS $THREADS --timeout 10s -s "$BENCH_DIR/refresh.lua"

# ---- one session refreshed 10,000 times: its storage must stay constant -----
# A fresh login; then wrk (1 thread, 1 connection) refreshes that one session
# in a chain, each request presenting the token the last answer returned,
# until CHAIN_REFRESHES answers (bench/chain.lua then stops its thread and
# writes a file; wrk would wait out its -d, so it is ended with SIGINT, after
# which it reports as usual). Before and after, the server's database is read
# through a read-only connection beside the server (WAL mode): the rows of
# `sessions`, of that session and of every table, the session's generation,
# the sizes of the database file and its WAL.
# db_rows PREFIX: records PREFIX_{sessions,session_rows,all_rows,generation,db_bytes,wal_bytes}
db_rows() {
  if [[ $BACKEND == postgres ]]; then db_rows_pg "$1"; return; fi
  python3 - "$TMP/bench.db" "$CHAIN_SID" "$1" >>"$RESULTS" <<'EOF'
import os, sqlite3, sys
path, sid, prefix = sys.argv[1:]
db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
one = lambda sql, *args: db.execute(sql, args).fetchone()[0]
tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
print(f"{prefix}_sessions={one('SELECT COUNT(*) FROM sessions')}")
print(f"{prefix}_session_rows={one('SELECT COUNT(*) FROM sessions WHERE id = ?', sid)}")
all_rows = sum(one('SELECT COUNT(*) FROM "' + t + '"') for t in tables)
print(f"{prefix}_all_rows={all_rows}")
print(f"{prefix}_generation={one('SELECT MAX(generation) FROM sessions WHERE id = ?', sid)}")
db.close()
size = lambda p: os.path.getsize(p) if os.path.exists(p) else 0
print(f"{prefix}_db_bytes={size(path)}")
print(f"{prefix}_wal_bytes={size(path + '-wal')}")
EOF
}
# The same from PostgreSQL: the database's size for the file, no WAL figure.
db_rows_pg() {
  local q="psql_bench -d bench -At -c"
  {
    echo "$1_sessions=$($q 'SELECT COUNT(*) FROM sessions')"
    echo "$1_session_rows=$($q "SELECT COUNT(*) FROM sessions WHERE id = '$CHAIN_SID'")"
    echo "$1_all_rows=$($q "SELECT (SELECT COUNT(*) FROM users) + (SELECT COUNT(*) FROM sessions)
      + (SELECT COUNT(*) FROM legacy_refresh_tokens) + (SELECT COUNT(*) FROM limit_counters)
      + (SELECT COUNT(*) FROM app_secrets)")"
    echo "$1_generation=$($q "SELECT MAX(generation) FROM sessions WHERE id = '$CHAIN_SID'")"
    echo "$1_db_bytes=$($q "SELECT pg_database_size('bench')")"
    echo "$1_wal_bytes=0"
  } >>"$RESULTS"
}
code=$(curl -s -o "$TMP/chain_login.json" -w '%{http_code}' -H 'Content-Type: application/json' \
  -d "{\"username\":\"$BENCH_USER\",\"password\":\"$BENCH_PASSWORD\"}" "$BASE/login")
[[ $code == 200 ]] || die "login for the chain answered $code"
CHAIN_TOKEN=$(jq -r .refresh_token "$TMP/chain_login.json")
# The session id is the refresh token's `sid` claim (JWT payload, base64url).
CHAIN_SID=$(python3 -c '
import base64, json, sys
payload = sys.argv[1].split(".")[1]
print(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sid"])' "$CHAIN_TOKEN")
record chain_target "$CHAIN_REFRESHES"
db_rows chain_before
echo "bench: chain (one session, $CHAIN_REFRESHES refreshes, 1 connection, at most ${CHAIN_MAX_SECS}s)" >&2
rm -f "$TMP/chain.done"
mark
BENCH_TOKEN=$CHAIN_TOKEN BENCH_MAX_REQUESTS=$CHAIN_REFRESHES BENCH_DONE_FILE=$TMP/chain.done \
  wrk -t1 -c1 -d"${CHAIN_MAX_SECS}s" --timeout 10s -s "$BENCH_DIR/chain.lua" "$BASE" >"$TMP/chain.out" 2>&1 &
CHAIN_PID=$!
while [[ ! -e $TMP/chain.done ]] && kill -0 "$CHAIN_PID" 2>/dev/null; do sleep 0.05; done
kill -INT "$CHAIN_PID" 2>/dev/null || true
wait "$CHAIN_PID" || true
CHAIN_PID=
other_cores chain
parse_wrk chain
db_rows chain_after

# Pages during login floods. A flood is 64 connections of logins, more than
# the bcrypt queue holds: beyond the queue every login is answered 503 at
# once and its connection sends the next (a storm of immediate retries).
# Beside it a low-rate probe (4 connections, 20 ms pause between requests:
# ~200 req/s) measures each face of GET /protected, one after the other.
# flood_with_probes NAME SECS LUA [TAIL]: the flood runs SECS; the probes
# start after 2 s; TAIL (a shell function) runs after them, flood still on.
# Records NAME_* (the flood) and NAME_probe_{bearer,cookie}_*.
flood_with_probes() {
  local name=$1 secs=$2 lua=$3 tail=${4:-}
  echo "bench: $name (${secs}s, $CONNECTIONS connections) with probes on GET /protected" >&2
  mark
  (
    cd "$TMP"
    wrk -t$THREADS -c$CONNECTIONS -d"${secs}s" --timeout 60s -s "$BENCH_DIR/$lua" "$BASE" \
      >"$TMP/$name.out" 2>&1 || true
  ) &
  local flood_pid=$!
  sleep 2
  BENCH_PATH=/protected BENCH_BEARER=$ACCESS BENCH_DELAY_MS=20 \
    wrk -t1 -c4 -d"${DURATION}s" --timeout 10s -s "$BENCH_DIR/get.lua" "$BASE" \
    >"$TMP/${name}_probe_bearer.out" 2>&1 || true
  BENCH_PATH=/protected BENCH_COOKIE=$COOKIE BENCH_DELAY_MS=20 \
    wrk -t1 -c4 -d"${DURATION}s" --timeout 10s -s "$BENCH_DIR/get.lua" "$BASE" \
    >"$TMP/${name}_probe_cookie.out" 2>&1 || true
  if [[ -n $tail ]]; then "$tail"; fi
  wait "$flood_pid"
  other_cores "$name"
  parse_wrk "$name"
  parse_wrk "${name}_probe_bearer"
  parse_wrk "${name}_probe_cookie"
}

# Sequential logins by curl during the spraying flood: each answer's status,
# total time and Retry-After header (wrk's latency percentiles mix the 503s
# with the hashed answers, and its coordinated-omission correction adds
# samples to them, so the 503s are timed here). At most CURL_MAX requests,
# none started after CURL_SECS s, each bounded by --max-time 4.
curl_logins() {
  echo "bench: sequential curl logins during the flood (${CURL_SECS}s at most)" >&2
  local until=$(( $(date +%s) + CURL_SECS )) n=0
  : >"$TMP/spray_curl.txt"
  while (( n < CURL_MAX && $(date +%s) < until )); do
    curl -s -o /dev/null --max-time 4 -H 'Content-Type: application/json' \
      -w '%{http_code} %{time_total} %header{retry-after}\n' \
      -d '{"username":"flood-curl","password":"wrong-Pw-curl-x9q"}' "$BASE/login" \
      >>"$TMP/spray_curl.txt" 2>/dev/null || echo "000 0" >>"$TMP/spray_curl.txt"
    n=$((n + 1))
    sleep 0.02
  done
}

# 1. One user's right password, as fast as 64 connections send it.
flood_with_probes flood $((2 * DURATION + 4)) login.lua
sleep 2   # the queue drains (the jobs of closed connections are skipped)

# 2. Spraying: wrong passwords across 1,000 distinct usernames (they do not
#    exist: each still costs a hash, against the dummy); then curl times 503s.
BENCH_USERS_COUNT=$SPRAY_USERS BENCH_USERS_PREFIX=flood BENCH_THREADS=$THREADS \
  flood_with_probes spray $((2 + 2 * DURATION + CURL_SECS + 4)) login_users.lua curl_logins
python3 - "$TMP/spray_curl.txt" >>"$RESULTS" <<'EOF'
import math, statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
times = sorted(float(r[1]) * 1000 for r in rows if r[0] == "503")
rank = lambda p: times[max(0, math.ceil(p / 100 * len(times)) - 1)]
print(f"curl_requests={len(rows)}")
print(f"curl_503={len(times)}")
print(f"curl_401={sum(r[0] == '401' for r in rows)}")
print(f"curl_other={sum(r[0] not in ('401', '503') for r in rows)}")
print(f"curl_503_no_retry_after={sum(r[0] == '503' and len(r) < 3 for r in rows)}")
if times:
    print(f"curl_503_p50_ms={statistics.median(times):.2f}")
    print(f"curl_503_p99_ms={rank(99):.2f}")
    print(f"curl_503_max_ms={times[-1]:.2f}")
EOF
sleep 2

# 3. Logins beside a CPU hog on every core (normal priority, as any busy
#    process on a shared box): the bcrypt threads (SCHED_BATCH) must still
#    get their share of the CPU.
echo "bench: $CORES CPU hogs at normal priority" >&2
start_hogs $((LOGIN_DURATION + 20))
sleep 1
run_wrk login_hog "$LOGIN_DURATION" $HOG_CONNECTIONS $THREADS --timeout 60s -s "$BENCH_DIR/login.lua"
stop_hogs

# 4. A locked-out client flooding logins: the audit log's heaviest load (the
#    floods above are answered 503 before any event, or hashed at ~8/s). A
#    second server on the same database and keys (the first one idle now),
#    with low limits: after LOCKED_FAILURES wrong passwords from 127.0.0.1
#    every attempt is a 429 answered before any hash, and each one records a
#    login_locked event (queued, written in batches). The probes present the
#    same tokens to it.
LOCKED_PORT=$((PORT + 5))
LOCKED_FAILURES=10
echo "bench: a locked-out client's login flood on a second server (port $LOCKED_PORT)" >&2
(
  cd "$TMP"
  exec env -i PATH="$PATH" \
    BIND_ADDR="127.0.0.1:$LOCKED_PORT" \
    DATABASE_URL="$DB_URL" \
    APP_ENV=development \
    JWT_SECRET_KEY="$SECRET" \
    BCRYPT_COST=12 \
    LOGIN_MAX_FAILURES=$LOCKED_FAILURES \
    LOGIN_MAX_FAILURES_PER_IP=$LOCKED_FAILURES \
    LOGIN_FAILURE_WINDOW=3600 \
    RUST_LOG=info \
    "$BIN" serve >"$TMP/locked.log" 2>&1
) &
LOCKED_PID=$!
until curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$LOCKED_PORT/healthz"; do
  kill -0 "$LOCKED_PID" 2>/dev/null || { cat "$TMP/locked.log" >&2; die "the second server exited"; }
  sleep 0.05
done
# locked_events ROWS|COUNTED: the `login_locked` events written one by one,
# or the events the queue could not hold, written as counts (one event per
# kind: "N more not recorded one by one (queue full)").
locked_events() {
  local summary="COALESCE(detail, '') LIKE '% more not recorded one by one%'" first sql
  if [[ $BACKEND == postgres ]]; then first="CAST(split_part(detail, ' ', 1) AS bigint)"
  else first="CAST(substr(detail, 1, instr(detail, ' ') - 1) AS INTEGER)"
  fi
  case $1 in
    ROWS) sql="SELECT COUNT(*) FROM audit_events WHERE event = 'login_locked' AND NOT ($summary)" ;;
    COUNTED) sql="SELECT COALESCE(SUM($first), 0) FROM audit_events WHERE event = 'login_locked' AND $summary" ;;
  esac
  if [[ $BACKEND == postgres ]]; then psql_bench -d bench -At -c "$sql"
  else python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])" "$TMP/bench.db" "$sql"
  fi
}
LOCKED_BEFORE=$(locked_events ROWS)
LOCKED_COUNTED_BEFORE=$(locked_events COUNTED)
MAIN_BASE=$BASE
BASE="http://127.0.0.1:$LOCKED_PORT"
SECOND_PID=$LOCKED_PID   # its CPU is the server's in this run
BENCH_USERS_COUNT=$SPRAY_USERS BENCH_USERS_PREFIX=locked BENCH_THREADS=$THREADS \
  flood_with_probes locked $((2 * DURATION + 4)) login_users.lua
SECOND_PID=
BASE=$MAIN_BASE
sleep 2   # the queue drains
record locked_failures "$LOCKED_FAILURES"
record locked_events "$(( $(locked_events ROWS) - LOCKED_BEFORE ))"
record locked_events_counted "$(( $(locked_events COUNTED) - LOCKED_COUNTED_BEFORE ))"
record locked_dropped_warnings "$(grep -c 'audit queue full' "$TMP/locked.log" || true)"
kill -TERM "$LOCKED_PID"; wait "$LOCKED_PID" 2>/dev/null || true

# ---- --postgres: two instances behind nginx ----------------------------------
# A second instance on the same database and key (PORT + 1), and nginx on
# NGINX_PORT with deploy/nginx.conf as shipped: only its listen port, the two
# upstream ports and the runtime paths are substituted. healthz, Bearer and
# cookie pages through nginx, in interleaved rounds as above.
if [[ $BACKEND == postgres ]]; then
  (
    cd "$TMP"
    exec env -i PATH="$PATH" BIND_ADDR="127.0.0.1:$((PORT + 1))" DATABASE_URL="$DB_URL" APP_ENV=development \
      JWT_SECRET_KEY="$SECRET" BCRYPT_COST=12 TRUSTED_PROXIES=127.0.0.1 RUST_LOG=info \
      "$BIN" serve >"$TMP/second.log" 2>&1
  ) &
  SECOND_PID=$!
  mkdir -p "$TMP/nginx/logs" "$TMP/nginx/lib"
  sed -e "s|listen 80;|listen 127.0.0.1:$NGINX_PORT;|" \
    -e "s|server 127.0.0.1:8081;|server 127.0.0.1:$PORT;|" \
    -e "s|server 127.0.0.1:8082;|server 127.0.0.1:$((PORT + 1));|" \
    -e "s|/var/log/nginx/|$TMP/nginx/logs/|g" -e "s|/var/lib/nginx/|$TMP/nginx/lib/|g" \
    "$ROOT/deploy/nginx.conf" >"$TMP/nginx/nginx.conf"
  [[ $(id -u) == 0 ]] && chown -R www-data "$TMP/nginx/lib" 2>/dev/null || true
  nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -g "daemon off; pid $TMP/nginx/nginx.pid;" \
    >"$TMP/nginx/stdout.log" 2>&1 &
  NGINX_PID=$!
  deadline=$(( $(date +%s) + 10 ))
  until [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$((PORT + 1))/healthz") == 200 \
        && $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$NGINX_PORT/healthz") == 200 ]]; do
    (( $(date +%s) < deadline )) || { cat "$TMP/second.log" "$TMP/nginx/stdout.log" >&2; die "nginx or the second instance did not come up"; }
    sleep 0.1
  done
  NGINX_BASE="http://127.0.0.1:$NGINX_PORT"
  for round in $(seq "$ROUNDS"); do
    for page in healthz bearer cookie; do
      case $page in
        healthz) env_args=(BENCH_PATH=/healthz) ;;
        bearer) env_args=(BENCH_PATH=/protected BENCH_BEARER="$ACCESS") ;;
        cookie) env_args=(BENCH_PATH=/protected BENCH_COOKIE="$COOKIE") ;;
      esac
      echo "bench: nginx_${page}_$round (${DURATION}s, $CONNECTIONS connections, through nginx)" >&2
      mark
      env "${env_args[@]}" wrk -t$THREADS -c$CONNECTIONS -d"${DURATION}s" --timeout 10s -s "$BENCH_DIR/get.lua" \
        "$NGINX_BASE" >"$TMP/nginx_${page}_$round.out" 2>&1 || true
      other_cores "nginx_${page}_$round"
      parse_wrk "nginx_${page}_$round"
    done
  done
  record second_requests "$(grep -c ' INFO request request_id=' "$TMP/second.log" || true)"
  kill -TERM "$NGINX_PID" "$SECOND_PID" 2>/dev/null || true
  wait "$NGINX_PID" "$SECOND_PID" 2>/dev/null || true
  NGINX_PID= SECOND_PID=
fi

# ---- memory, shutdown ---------------------------------------------------------
record rss_peak_kib "$(awk '/^VmHWM/ {print $2}' "/proc/$SERVER_PID/status")"
record rss_end_kib "$(awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status")"
record threads "$(awk '/^Threads/ {print $2}' "/proc/$SERVER_PID/status")"
record load_after "$(cut -d' ' -f1-3 /proc/loadavg)"
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || true
SERVER_PID=
# The log: every WARN/ERROR line, and apart the two lines each refused login
# is expected to write (the hasher's "queue full", the error page's 503).
QUEUE_FULL=' WARN password hashing refused: queue full'
OVERLOADED=' ERROR request failed status=503 error=Overloaded'
record server_log_lines "$(wc -l <"$TMP/server.log")"
record server_log_bytes "$(wc -c <"$TMP/server.log")"
record server_errors "$(grep -c -E ' (ERROR|WARN) ' "$TMP/server.log" || true)"
record server_queue_full_warns "$(grep -c -e "$QUEUE_FULL" "$TMP/server.log" || true)"
record server_overloaded_errors "$(grep -c -e "$OVERLOADED" "$TMP/server.log" || true)"
{ grep -E ' (ERROR|WARN) ' "$TMP/server.log" || true; } | { grep -v -e "$QUEUE_FULL" -e "$OVERLOADED" || true; } \
  >"$TMP/server_other_errors.txt"
record server_other_errors "$(wc -l <"$TMP/server_other_errors.txt")"
if [[ -s $TMP/server_other_errors.txt ]]; then
  echo "bench: other WARN/ERROR lines in the server log (first 5):" >&2
  head -n5 "$TMP/server_other_errors.txt" >&2
fi
# Request-log lines by status class: a 5xx other than 503 under load is a bug.
REQUEST_LINE=' INFO request request_id='
record server_503 "$({ grep -e "$REQUEST_LINE" "$TMP/server.log" || true; } | grep -c ' status=503 ' || true)"
record server_5xx_not_503 "$({ grep -e "$REQUEST_LINE" "$TMP/server.log" || true; } \
  | grep -E ' status=5[0-9][0-9] ' | grep -vc ' status=503 ' || true)"

python3 "$BENCH_DIR/report.py" "$RESULTS" "$OUT"
