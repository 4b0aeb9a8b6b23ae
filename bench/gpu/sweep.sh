# F1-only tuning sweep on the GPU machine: each config = 8/16/64 per class x 3 seeds + 40 % noise x 3 seeds.
deadline=$(( $(date +%s) + ${SWEEP_SECONDS:-360} ))
mkdir -p /tmp/sw
run() {
  name=$1; shift
  if [ $(date +%s) -gt $deadline ]; then echo "skip $name (deadline)"; return; fi
  t0=$(date +%s)
  python3 bench/train.py --device cuda --data .gpu/b77 --jobs ${JOBS:-8} --threads 2 --no-probe --sizes ${SIZES:-8 16 64} \
    --seeds 3 --seeds-64 3 --noise 0.4 --noise-seeds 3 --noise-modes auto --out /tmp/sw/$name.json "$@" > /tmp/sw/$name.log 2>&1
  python3 -c "import json,sys; d=json.load(open('/tmp/sw/$name.json')); print(json.dumps({'name':'$name','secs':$(date +%s)-$t0,'set':d['args']['set'],'summary':d['summary'],'rows':[{k:r[k] for k in ('experiment','per_class','seed','method','macro_f1','steps') if k in r} for r in d['rows']]}))" >> $OUT/sweep.jsonl || tail -5 /tmp/sw/$name.log
  tail -12 /tmp/sw/$name.log | grep '^|'
}
run base
run steps600 --no-full --set epochs=8 max_steps=600 min_steps=120
run r16 --no-full --set lora_r=16 lora_alpha=32
run layers3 --no-full --set lora_layers=3
run lr1e-2 --no-full --set lr=1e-2
run reg --no-full --set lora_dropout=0.1 weight_decay=0.01
run bs32 --no-full --set batch_size=32
run layers3steps --no-full --set lora_layers=3 epochs=8 max_steps=600 min_steps=120
