#!/usr/bin/env bash
# Roll one CarSearch machine onto an image, after `carsearch migrate` has run once for the
# release (.github/workflows/deploy.yml does both; docs/DEPLOYMENT.md explains the layout).
#
#   roll-host.sh IMAGE
#
# On the machine: Docker, curl, and /etc/carsearch/carsearch.env with the settings
# (DATABASE_URL, CARSEARCH_SECRET_KEY, ...). Optional /etc/carsearch/roll.env may set
# DRAIN_COMMAND and UNDRAIN_COMMAND (take the machine out of the load balancer and put it
# back), API_WORKERS (default: the number of cores) and API_PORT (default 8000).
#
# Order: the search index of the image's index schema (built beside the current one when
# the release changed it, while the old processes keep serving), then the worker, then the
# API; the script ends when /readyz answers 200, and fails otherwise.
set -euo pipefail

IMAGE=${1:?usage: roll-host.sh IMAGE}
ENV_FILE=/etc/carsearch/carsearch.env
if [[ -f /etc/carsearch/roll.env ]]; then
    # shellcheck disable=SC1091
    source /etc/carsearch/roll.env
fi
API_WORKERS=${API_WORKERS:-$(nproc)}
API_PORT=${API_PORT:-8000}
DRAIN_COMMAND=${DRAIN_COMMAND:-}
UNDRAIN_COMMAND=${UNDRAIN_COMMAND:-}

log() { echo "[$(hostname)] $*"; }

docker pull --quiet "$IMAGE"

# Shared by the API and the worker: the process namespace (metrics files are named by
# process id), the metrics directory (in memory) and the search index (on disk).
if ! docker container inspect carsearch-processes >/dev/null 2>&1; then
    docker run --detach --name carsearch-processes --init --restart unless-stopped \
        --no-healthcheck "$IMAGE" sleep infinity >/dev/null
fi
if ! docker volume inspect carsearch-metrics >/dev/null 2>&1; then
    docker volume create --driver local --opt type=tmpfs --opt device=tmpfs \
        --opt o=size=64m,uid=10001,gid=10001,mode=0750 carsearch-metrics >/dev/null
fi

# One index directory per index schema: a release that changes the schema builds its own
# while the running release keeps reading the old one.
schema=$(docker run --rm --no-healthcheck "$IMAGE" \
    python -c 'from carsearch.search.documents import SCHEMA_VERSION; print(SCHEMA_VERSION)')
index_dir=/var/lib/carsearch/index/v$schema
common=(
    --env-file "$ENV_FILE"
    --env "CARSEARCH_SEARCH_INDEX_DIR=$index_dir"
    --env CARSEARCH_METRICS_DIR=/run/carsearch/metrics
    --volume carsearch-index:/var/lib/carsearch/index
    --volume carsearch-metrics:/run/carsearch/metrics
    --pid container:carsearch-processes
)

log "search index $index_dir"
docker run --rm --no-healthcheck "${common[@]}" "$IMAGE" sh -c \
    'python -c "import sys; from carsearch.config import get_settings;
from carsearch.search.store import IndexStore;
sys.exit(0 if IndexStore(get_settings().index_dir).exists() else 1)" || carsearch reindex'

replace() {
    local name=$1 grace=$2
    shift 2
    if docker container inspect "$name" >/dev/null 2>&1; then
        docker stop --time "$grace" "$name" >/dev/null
        docker rm "$name" >/dev/null
    fi
    docker run --detach --name "$name" --restart unless-stopped "${common[@]}" "$@" >/dev/null
}

log "worker"
# A job in progress gets a minute to finish; procrastinate retries one that did not.
replace carsearch-worker 60 --no-healthcheck "$IMAGE" carsearch worker

log "api"
if [[ -n $DRAIN_COMMAND ]]; then
    bash -c "$DRAIN_COMMAND"
fi
replace carsearch-api 30 --publish "$API_PORT:8000" "$IMAGE" \
    carsearch serve --workers "$API_WORKERS"

for _ in $(seq 1 60); do
    if curl --silent --fail --max-time 3 "http://127.0.0.1:$API_PORT/readyz" >/dev/null; then
        if [[ -n $UNDRAIN_COMMAND ]]; then
            bash -c "$UNDRAIN_COMMAND"
        fi
        log "ready: $IMAGE"
        exit 0
    fi
    sleep 2
done
log "not ready after 2 minutes:"
curl --silent --max-time 3 "http://127.0.0.1:$API_PORT/readyz" || true
docker logs --tail 50 carsearch-api || true
exit 1
