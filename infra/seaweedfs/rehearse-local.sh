#!/usr/bin/env bash
# Rehearse the cluster layout on one machine, all on 127.0.0.1: 3 masters (Raft), 4 volume
# servers on 2 racks with replication 010, 1 filer, 2 S3 gateways. Then write an object through
# one gateway, read it through the other, check that it has a copy on each rack, and stop
# everything. Uses run.sh, the same script the real hosts use.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
export WEED="${WEED:-$repo/.venv/bin/weed}"
py="$repo/.venv/bin/python"
work="$(mktemp -d)"
export TMPDIR="$work"   # weed's glog files and unix sockets
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  sleep 5
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

ip=127.0.0.1
base="${BASE_PORT:-19330}"
m1=$base m2=$((base + 1)) m3=$((base + 2))
cat >"$work/cluster.env" <<ENV
MASTERS=$ip:$m1,$ip:$m2,$ip:$m3
REPLICATION=010
VOLUME_SIZE_LIMIT_MB=64
MASTER_DIR=$work/master
VOLUME_DIR=$work/volume
FILER_DIR=$work/filer
FILER=$ip:$((base + 20))
S3_IDENTITIES=$work/identities.json
ENV
"$py" - "$work/identities.json" <<'PY'
import json, secrets, sys
json.dump({"identities": [{"name": "admin", "credentials": [{"accessKey": "rehearsal", "secretKey": secrets.token_urlsafe(24)}],
                           "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}, open(sys.argv[1], "w"))
PY
export CLUSTER_ENV="$work/cluster.env"
start() {  # name port role [rack]; each service gets its own data folder
  local name=$1 port=$2 role=$3 rack=${4:-rack1}
  (export DATA_DIR="$work/$name" PORT=$port
   exec "$here/run.sh" "$role" "$ip" "$rack") >"$work/$name.log" 2>&1 &
  pids+=($!)
}
for p in $m1 $m2 $m3; do start "master-$p" "$p" master; done
start vol-a1 $((base + 10)) volume rack1
start vol-a2 $((base + 11)) volume rack1
start vol-b1 $((base + 12)) volume rack2
start vol-b2 $((base + 13)) volume rack2
sleep 8
start filer $((base + 20)) filer
sleep 4
start s3-a $((base + 30)) s3
start s3-b $((base + 31)) s3

"$py" - "$work/identities.json" "$ip" $((base + 30)) $((base + 31)) "$ip:$m1" <<'PY'
import json, sys, time, urllib.request
import boto3
from botocore.config import Config
ident, ip, port_a, port_b, master = sys.argv[1:]
cred = json.load(open(ident))["identities"][0]["credentials"][0]
def client(port):
    return boto3.client("s3", endpoint_url=f"http://{ip}:{port}", aws_access_key_id=cred["accessKey"],
                        aws_secret_access_key=cred["secretKey"], region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}))
a, b = client(port_a), client(port_b)
deadline = time.time() + 60
while True:
    try:
        a.create_bucket(Bucket="tailor")
        break
    except Exception as err:
        if time.time() > deadline:
            raise SystemExit(f"cluster did not come up: {err}")
        time.sleep(1)
a.put_object(Bucket="tailor", Key="adapters/demo/probe.bin", Body=b"x" * 4096)
assert b.get_object(Bucket="tailor", Key="adapters/demo/probe.bin")["Body"].read() == b"x" * 4096
topo = json.load(urllib.request.urlopen(f"http://{master}/dir/status"))["Topology"]
racks = {r["Id"]: sum(n["Volumes"] for n in r["DataNodes"]) for dc in topo["DataCenters"] for r in dc["Racks"]}
print("volumes per rack:", racks)
assert len(racks) == 2 and all(v > 0 for v in racks.values()), "replication 010 needs volumes on two racks"
print("ok: written through gateway A, read through gateway B; replication-010 volumes on both racks")
PY
