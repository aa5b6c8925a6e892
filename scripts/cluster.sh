#!/usr/bin/env bash
# Try the service as several replicas on this machine: N processes on one PostgreSQL database, a Chroma
# server and a round-robin proxy, all on 127.0.0.1 (bench/cluster.py measures it).
#   bash scripts/cluster.sh start [N]   proxy on :8080, replicas on :8081…, Chroma on :8000 (default N = 3)
#   bash scripts/cluster.sh restart I   start replica I again (after it was killed)
#   bash scripts/cluster.sh stop
# The database: $SHEGONG_DATABASE_URL, by default a database shegong_cluster on the local PostgreSQL
# (created when absent). Data in data/cluster/. Telegram runs in webhook mode behind the proxy against a
# Bot API stand-in on :8079 (tests/e2e/botapi_standin.py; GET /_sent lists what the replicas sent), so no
# real bot is touched; WeChat callbacks are served, its message API is not reachable here.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DIR=${SHEGONG_CLUSTER_DIR:-$ROOT/data/cluster}
PY=$ROOT/.venv/bin/python
DB=${SHEGONG_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/shegong_cluster}
PROXY_PORT=${SHEGONG_PROXY_PORT:-8080}
CHROMA_PORT=${SHEGONG_CHROMA_PORT:-8000}
BOTAPI_PORT=${SHEGONG_BOTAPI_PORT:-8079}
export WECHAT_TOKEN=${WECHAT_TOKEN:-clustertoken} WECHAT_APP_SECRET=${WECHAT_APP_SECRET:-clustersecret}
export TELEGRAM_BOT_TOKEN=123456789:cluster-standin-token TELEGRAM_WEBHOOK_SECRET=${TELEGRAM_WEBHOOK_SECRET:-cluster-secret}

stop() {  # SIGTERM to every process (replicas finish what they handle), SIGKILL to what is left after 30 s
    local pids=()
    for pidfile in "$DIR"/*.pid; do
        [ -e "$pidfile" ] || continue
        pids+=("$(cat "$pidfile")")
        kill "$(cat "$pidfile")" 2>/dev/null || true
        rm -f "$pidfile"
    done
    for _ in $(seq 1 60); do
        local left=0
        for pid in ${pids[@]+"${pids[@]}"}; do kill -0 "$pid" 2>/dev/null && left=1; done
        [ "$left" = 0 ] && return 0
        sleep 0.5
    done
    for pid in ${pids[@]+"${pids[@]}"}; do kill -9 "$pid" 2>/dev/null || true; done
}

wait_up() {  # url, seconds
    for _ in $(seq 1 "$2"); do
        if curl -fs -o /dev/null "$1"; then return 0; fi
        sleep 1
    done
    echo "cluster: $1 did not answer within $2 s (see $DIR/*.log)" >&2
    return 1
}

run_replica() {  # number
    "$PY" -m bot --config "$DIR/replica-$1.toml" >> "$DIR/replica-$1.log" 2>&1 &
    echo $! > "$DIR/replica-$1.pid"
}

start() {
    local n=${1:-3}
    for port in "$PROXY_PORT" "$CHROMA_PORT" "$BOTAPI_PORT" $(seq $((PROXY_PORT + 1)) $((PROXY_PORT + n))); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then  # something answers there already
            echo "cluster: port $port is in use (a service or an earlier cluster still running?)" >&2
            return 1
        fi
    done
    if [ -z "${SHEGONG_DATABASE_URL:-}" ]; then
        # the script's own database goes with its data folder: a new folder (a new Chroma store) starts a new
        # database, or the database would point at index generations the new store does not have
        [ -d "$DIR/chroma" ] || dropdb -h 127.0.0.1 -U postgres --if-exists shegong_cluster
        psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'shegong_cluster'" | grep -q 1 \
            || createdb -h 127.0.0.1 -U postgres shegong_cluster
    fi
    mkdir -p "$DIR"
    rm -f "$DIR"/replica-*.toml  # an earlier start may have had more replicas
    [ -d "$DIR/knowledge" ] || cp -r "$ROOT/knowledge" "$DIR/knowledge"  # one folder the replicas ingest from
    "$ROOT/.venv/bin/chroma" run --path "$DIR/chroma" --host 127.0.0.1 --port "$CHROMA_PORT" > "$DIR/chroma.log" 2>&1 &
    echo $! > "$DIR/chroma.pid"
    wait_up "http://127.0.0.1:$CHROMA_PORT/api/v2/heartbeat" 60
    "$PY" -m tests.e2e.botapi_standin --port "$BOTAPI_PORT" --token "$TELEGRAM_BOT_TOKEN" > "$DIR/botapi.log" 2>&1 &
    echo $! > "$DIR/botapi.pid"
    wait_up "http://127.0.0.1:$BOTAPI_PORT/_sent" 30  # the replicas call setWebhook on it as they start
    local backends=()
    for i in $(seq 1 "$n"); do
        local port=$((PROXY_PORT + i))
        cat > "$DIR/replica-$i.toml" <<TOML
# replica $i of scripts/cluster.sh
[knowledge]
docs_dir = "$DIR/knowledge"
index_dir = "$DIR/index-$i"
chroma_url = "http://127.0.0.1:$CHROMA_PORT"
collection = "cluster"
[database]
url = "$DB"
journal_dir = "$DIR/journal"  # one folder for all: any replica replays what another kept
# replicas and the tests within PostgreSQL's default max_connections (100): at most 5 + 5 + 16 + 8 each
pool_size = 5
max_overflow = 5
[web]
port = $port
# the replicas share this machine's cores: together they take what one process would (16), not N times it
max_in_flight = $(( (16 + n - 1) / n ))
[tickets]
organisation_file = "$ROOT/district.toml"
categories_file = "$ROOT/categories.toml"
[casework]
laws_dir = "$ROOT/laws"
laws_index_dir = "$DIR/laws-$i"
laws_collection = "cluster_laws"
[telegram]
mode = "webhook"
webhook_url = "http://127.0.0.1:$PROXY_PORT/telegram"
base_url = "http://127.0.0.1:$BOTAPI_PORT/bot{token}"
[wechat]
kind = "official"
app_id = "wxcluster"
api_base = "http://127.0.0.1:9"
[cluster]
shared_index = true
TOML
        : > "$DIR/replica-$i.log"
        run_replica "$i"
        # the first replica ingests the shared index; the others start once it is there
        [ "$i" = 1 ] && wait_up "http://127.0.0.1:$port/readyz" 600
        backends+=(--backend "http://127.0.0.1:$port")
    done
    for i in $(seq 1 "$n"); do wait_up "http://127.0.0.1:$((PROXY_PORT + i))/readyz" 600; done
    "$PY" "$ROOT/scripts/rr_proxy.py" --port "$PROXY_PORT" "${backends[@]}" > "$DIR/proxy.log" 2>&1 &
    echo $! > "$DIR/proxy.pid"
    wait_up "http://127.0.0.1:$PROXY_PORT/healthz" 30
    echo "cluster: $n replicas behind http://127.0.0.1:$PROXY_PORT/ (database $DB, data in $DIR)"
}

case "${1:-}" in
    start) start "${2:-3}" ;;
    restart) run_replica "${2:?which replica}" ;;
    stop) stop ;;
    *) echo "usage: bash scripts/cluster.sh start [N] | restart I | stop" >&2; exit 2 ;;
esac
