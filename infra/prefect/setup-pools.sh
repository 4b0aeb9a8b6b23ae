#!/usr/bin/env bash
# Create Tailor's work pools on the Prefect server and register the deployments of prefect.yaml.
#   PREFECT_API_URL=http://<prefect-host>:4200/api TAILOR_REPO=/opt/tailor TAILOR_ADAPTER=support \
#     infra/prefect/setup-pools.sh
# Then on each worker host (same repository at $TAILOR_REPO, `make setup` done):
#   GPU host:  PREFECT_API_URL=... .venv/bin/prefect worker start --pool tailor-gpu --type process
#   CPU hosts: PREFECT_API_URL=... .venv/bin/prefect worker start --pool tailor-cpu --type process
set -euo pipefail
: "${PREFECT_API_URL:?set PREFECT_API_URL to the shared Prefect server's API (http://host:4200/api)}"
: "${TAILOR_REPO:?set TAILOR_REPO to where the repository lives on the worker hosts}"
: "${TAILOR_ADAPTER:?set TAILOR_ADAPTER to the adapter name the schedule retrains}"
here="$(cd "$(dirname "$0")" && pwd)"
prefect="${PREFECT:-$here/../../.venv/bin/prefect}"
export PREFECT_SERVER_ANALYTICS_ENABLED=false

# Process workers run each flow run as a subprocess of the worker, in the worker's environment.
for pool in tailor-gpu tailor-cpu; do
  "$prefect" work-pool create "$pool" --type process --overwrite
done
# At most one training at a time per GPU host pool slot; raise with more GPU hosts.
"$prefect" work-pool set-concurrency-limit tailor-gpu 1
"$prefect" --no-prompt deploy --prefect-file "$here/prefect.yaml" --all
