#!/usr/bin/env bash
# Start one SeaweedFS service of the Tailor cluster on this host.
#   infra/seaweedfs/run.sh master|volume|filer|s3 [HOST_IP] [RACK]
# Reads cluster.env beside this script. Foreground process: run it under systemd (see
# tailor-seaweedfs@.service) or your supervisor of choice.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck disable=SC1091
source "${CLUSTER_ENV:-$here/cluster.env}"
role="${1:?usage: run.sh master|volume|filer|s3 [HOST_IP] [RACK]}"
ip="${2:-$(hostname -I | awk '{print $1}')}"
rack="${3:-rack1}"
weed="${WEED:-weed}"
# Ports are overridable so that several services can share one host (see rehearse-local.sh).
port="${PORT:-}"
data="${DATA_DIR:-}"

case "$role" in
  master)
    MASTER_DIR="${data:-$MASTER_DIR}"
    mkdir -p "$MASTER_DIR"
    exec "$weed" master -ip="$ip" -ip.bind="$ip" -port="${port:-9333}" -mdir="$MASTER_DIR" \
      -peers="$MASTERS" -defaultReplication="$REPLICATION" \
      -volumeSizeLimitMB="$VOLUME_SIZE_LIMIT_MB" -telemetry=false
    ;;
  volume)
    VOLUME_DIR="${data:-$VOLUME_DIR}"
    mkdir -p "$VOLUME_DIR"
    # -rack matters: replication 010 places the copy on another rack, so label racks truthfully.
    exec "$weed" volume -ip="$ip" -ip.bind="$ip" -port="${port:-8080}" -dir="$VOLUME_DIR" -max=0 \
      -mserver="$MASTERS" -dataCenter=dc1 -rack="$rack"
    ;;
  filer)
    FILER_DIR="${data:-$FILER_DIR}"
    mkdir -p "$FILER_DIR"
    cd "$FILER_DIR"  # filer.toml is read from the working directory (or /etc/seaweedfs)
    exec "$weed" filer -ip="$ip" -ip.bind="$ip" -port="${port:-8888}" -master="$MASTERS" \
      -defaultReplicaPlacement="$REPLICATION"
    ;;
  s3)
    exec "$weed" s3 -ip.bind="$ip" -port="${port:-8333}" -filer="$FILER" -config="$S3_IDENTITIES" \
      -port.iceberg=0 -port.lance=0
    ;;
  *)
    echo "unknown role '$role': master | volume | filer | s3" >&2
    exit 2
    ;;
esac
