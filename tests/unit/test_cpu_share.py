"""Training shares the host: a lower priority for every thread of the process, and a torch thread cap."""

import json
import subprocess
import sys

from pipelines.cpu_share import training_threads


def test_the_thread_cap_leaves_one_core_to_the_server_unless_set():
    assert training_threads(0, cpus=2) == 1 and training_threads(0, cpus=16) == 15
    assert training_threads(0, cpus=1) == 1 and training_threads(3, cpus=2) == 3


def test_every_thread_is_lowered_and_torch_gets_its_threads_back_after_training():
    # In a child: a lowered priority cannot be raised again by the test process.
    code = """
import json, os, threading, time, torch
from pipelines.cpu_share import training_share
torch.set_num_threads(2)
stop = threading.Event()
early = threading.Thread(target=stop.wait); early.start()  # a thread started before training
with training_share(7, 1) as (niceness, threads):
    inside = torch.get_num_threads()
    tids = [int(t) for t in os.listdir("/proc/self/task")]
    nice = {os.getpriority(os.PRIO_PROCESS, t) for t in tids}
stop.set(); early.join()
print(json.dumps({"niceness": niceness, "threads": threads, "inside": inside, "after": torch.get_num_threads(),
                  "nice": sorted(nice)}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.splitlines()[-1])
    assert got == {"niceness": 7, "threads": 1, "inside": 1, "after": 2, "nice": [7]}
