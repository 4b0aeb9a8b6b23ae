#!/usr/bin/env bash
# `make demo`: the main job on the sample data, as a person would run it.
# store → Prefect server → retrain (validate → train → evaluate → gate → register → staging)
# → a second person promotes to production → the HTML audit report → how to roll back → the console.
set -euo pipefail
cd "$(dirname "$0")/.."
export PREFECT_SERVER_ANALYTICS_ENABLED=false DVC_NO_ANALYTICS=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
tailor=.venv/bin/tailor
py=.venv/bin/python
name="${DEMO_NAME:-support-desk}"
started=$(date +%s)
outcome="${TAILOR_HOME:-.tailor}/demo-retrain.json"  # beside the rest of the project's state
mkdir -p "$(dirname "$outcome")"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1/5 object store (embedded SeaweedFS on 127.0.0.1), its people, and Prefect server"
$tailor store start
# Two people with their own store keys and signing keys: the audit log records who signed, and
# four-eyes compares signers. An admin is made once, when the keyring starts (its recovery key is printed once).
creds="${TAILOR_HOME:-.tailor}/credentials"
if [ ! -f "$creds/demo-admin.json" ]; then
  $tailor user init --name demo-admin
  for person in demo-trainer:trainer demo-approver:approver; do
    TAILOR_CREDENTIALS_FILE="$creds/demo-admin.json" $tailor user add "${person%%:*}" --role "${person##*:}" \
      --reason "demo"
  done
fi
trainer="$creds/demo-trainer.json"
approver="$creds/demo-approver.json"
# Their console passphrases (demo only: real people choose their own with `tailor user passwd`).
accounts="${TAILOR_HOME:-.tailor}/console/people"
for person in demo-trainer demo-approver; do
  if [ ! -f "$accounts/$person.json" ]; then
    echo "$person passphrase" | TAILOR_CREDENTIALS_FILE="$creds/$person.json" $tailor user passwd --passphrase-stdin
  fi
done
$tailor prefect start --timeout 300

step "2/5 a new batch arrives: data/sample/train.csv (4 classes, 112 rows, 5 deliberate label errors)"
batch="data/incoming/demo-$(date -u +%Y%m%dT%H%M%SZ).csv"
mkdir -p data/incoming
cp data/sample/train.csv "$batch"
echo "copied to $batch (a rejected batch is moved to data/quarantine/; the sample itself stays put)"

step "3/5 retrain as the trainer: validate → train → evaluate → gate → register → promote to staging"
set +e
TAILOR_CREDENTIALS_FILE="$trainer" $tailor retrain --data "$batch" --name "$name" \
  --holdout data/sample/holdout.csv --labels data/sample/labels.txt --json > "$outcome"
code=$?
set -e
# 0 = promoted, 1 = rejected by validation or the gate (a valid outcome, explained below);
# anything else, or no JSON at all, is a failure of the demo itself.
[ "$code" -le 1 ] && [ -s "$outcome" ] || { echo "retrain failed (exit $code)" >&2; exit $(( code > 1 ? code : 1 )); }
$py - "$outcome" <<'PY'
import json, sys
from pipelines.cli.retrain import describe
from pipelines.records import RetrainOutcome
print(describe(RetrainOutcome.model_validate(json.load(open(sys.argv[1])))))
PY
version=$($py -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"] or "")' "$outcome")
status=$($py -c 'import json,sys; print(json.load(open(sys.argv[1]))["status"])' "$outcome")

if [ "$status" = "promoted" ]; then
  step "4/5 a second person (four-eyes) promotes $name $version to production"
  TAILOR_CREDENTIALS_FILE="$approver" $tailor promote "$name" "$version" --to production \
    --reason "demo: gate passed, report reviewed"
else
  step "4/5 not promoted: $status; production is unchanged"
  if [ -n "$version" ]; then
    echo "an approver may still override: TAILOR_CREDENTIALS_FILE=$approver $tailor promote $name $version --to production --override --reason '…'"
  fi
fi

if [ -n "$version" ]; then
  step "5/5 audit report"
  mkdir -p reports
  report="reports/$name-$version.html"
  $tailor report "$name" "$version" --out "$report" --force  # a demo after clean-state numbers from v1 again
  cat <<EOF

Done in $(( $(date +%s) - started )) s.
  audit report (opens offline):  $(pwd)/$report
  versions and aliases:          $tailor list $name
  audit trail, verified:         $tailor audit log $name && $tailor audit verify $name
  roll production back:          TAILOR_CREDENTIALS_FILE=$approver $tailor rollback $name --reason "why"  (once production has held two versions)
  Prefect UI (runs, schedules):  $($tailor prefect status | awk '$1 == "ui_url" {print $2}')
  stop everything:               $tailor prefect stop && $tailor store stop
EOF
fi

step "the console: evidence, approvals queue, audit log, promote and roll back in the browser"
console_port="${DEMO_CONSOLE_PORT:-8900}"
console_log="${TAILOR_HOME:-.tailor}/console.log"
nohup $tailor console --port "$console_port" > "$console_log" 2>&1 &
console_pid=$!
for _ in $(seq 1 50); do
  grep -q "console on" "$console_log" 2>/dev/null && break
  kill -0 "$console_pid" 2>/dev/null || { cat "$console_log" >&2; exit 1; }
  sleep 0.2
done
cat <<EOF
  console:                       http://127.0.0.1:$console_port/  (JST; 日本語 or English from the browser, switch at the top)
  sign in as the approver:       demo-approver / "demo-approver passphrase"
  sign in as the trainer:        demo-trainer / "demo-trainer passphrase"
  stop the console:              kill $console_pid   (log: $console_log)
EOF
