"""Operating-load check: what serving this adapter costs, relative to the bare base model.

Measured in a fresh interpreter (``serving_probe``) so that memory and load time are a serving
process's, not the evaluator's (which also holds Evidently, scikit-learn and a second model). A retrain
launches it while the candidate trains (:func:`launch_ahead`), so its imports and the base's load run on
the core the training leaves free; otherwise the evaluator starts it before its other checks
(:meth:`Probe.start`). Either way it times only after them (:meth:`Probe.result`), so nothing else of the
run's is timed with it.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from pipelines.evaluation.checks import serving_probe
from pipelines.evaluation.checks.report import finish
from pipelines.policy import LoadPolicy
from pipelines.records import CheckResult, Threshold
from registry.errors import TailorError

NAME = "load"
PROBE_TIMEOUT_S = 300
log = logging.getLogger(__name__)


def adapter_mb(adapter_dir: Path) -> float:
    """Size of the adapter's weights (every safetensors file in its folder): what serving must load per adapter."""
    return sum(p.stat().st_size for p in Path(adapter_dir).glob("*.safetensors")) / 2**20


class Probe:
    """The serving probe in its own interpreter: loading the base from :meth:`launch`, the adapter from
    :meth:`load`, timing on :meth:`result`.

    A context manager: leaving it ends a probe never asked for its result.
    """

    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None
        self._adapter_dir: Path | None = None
        self._workdir = tempfile.TemporaryDirectory(prefix="tailor-load-")

    @classmethod
    def launch(cls, base_model_dir: Path) -> "Probe":
        """Start a probe loading ``base_model_dir``; it waits for :meth:`load` to say which adapter to time."""
        probe = cls()
        cmd = [sys.executable, "-m", serving_probe.__name__, str(base_model_dir)]
        try:
            probe._proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        except BaseException:
            probe.close()
            raise
        return probe

    @classmethod
    def start(cls, adapter_dir: Path, base_model_dir: Path, texts: list[str]) -> "Probe":
        """A probe loading ``base_model_dir`` (one :func:`launch_ahead` started, else a new one) and the adapter
        in ``adapter_dir``; it times ``texts`` later.

        With no text nothing starts: :meth:`result` says why, so the load check fails, not its caller.
        """
        if not texts:
            probe = cls()
            probe._adapter_dir = Path(adapter_dir)
            return probe
        probe = _take_launched(base_model_dir) or cls.launch(base_model_dir)
        try:
            probe.load(adapter_dir, texts)
        except BaseException:
            probe.close()
            raise
        return probe

    def load(self, adapter_dir: Path, texts: list[str]) -> None:
        """Hand the probe the adapter to load and the texts to time."""
        if self._proc is None:
            raise TailorError("this probe was never launched: Probe.start or Probe.launch starts one")
        self._adapter_dir = Path(adapter_dir)
        texts_file = Path(self._workdir.name) / "texts.json"
        texts_file.write_text(json.dumps(texts))
        try:
            self._proc.stdin.write(json.dumps({"adapter": str(adapter_dir), "texts": str(texts_file)}) + "\n")
            self._proc.stdin.flush()
        except OSError:  # it has ended already (a base that would not load): result() reports its error
            pass

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def result(self) -> dict[str, float]:
        """Let the probe time (once it has loaded) and return what it measured (plus ``adapter_mb``).

        Raises:
            TailorError: there was no text to send, or the probe failed or timed out (its stderr tail
                is in the message).
        """
        if self._proc is None or self._adapter_dir is None:
            raise TailorError("the load check needs at least one text to send")
        try:
            out, err = self._proc.communicate(serving_probe.GO + "\n", timeout=PROBE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.close()
            raise TailorError(f"the serving probe did not finish within {PROBE_TIMEOUT_S} s") from None
        if self._proc.returncode != 0:
            raise TailorError(f"the serving probe failed (exit {self._proc.returncode}): {err.strip()[-800:]}")
        measured = json.loads(out.strip().splitlines()[-1])
        measured["adapter_mb"] = adapter_mb(self._adapter_dir)
        return measured

    def stderr_tail(self) -> str:
        """What an ended probe wrote to stderr (its last 800 characters); empty for one still running."""
        if self._proc is None or self.alive() or self._proc.stderr is None or self._proc.stderr.closed:
            return ""
        return self._proc.stderr.read().strip()[-800:]

    def close(self) -> None:
        """End the probe if it still runs, close its pipes and remove its texts."""
        if self._proc is not None:
            if self.alive():
                self._proc.kill()
            for pipe in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
                if pipe is not None and not pipe.closed:
                    pipe.close()
            self._proc.wait()
        self._workdir.cleanup()

    def __enter__(self) -> "Probe":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# Probes launched ahead, by base folder: one per process and base, which holds while a process runs one
# retrain at a time (the CLI, a flow run, a watch); a second retrain beside it on the same base would take
# or discard the other's probe, and evaluate would then start its own, only later.
_launched: dict[Path, Probe] = {}
_launched_lock = threading.Lock()


def launch_ahead(base_model_dir: Path) -> None:
    """Start a probe loading ``base_model_dir`` now, for the next :meth:`Probe.start` on that base to take.

    Call it from a thread at the priority serving runs at: the probe inherits the calling thread's nice
    value, and a lowered one would time a background job. A failure to start is logged: ``Probe.start``
    starts its own then.
    """
    try:
        probe = Probe.launch(base_model_dir)
    except Exception as err:  # noqa: BLE001 - only a head start, from a thread: evaluate starts its own
        log.warning("the load probe could not be started ahead (evaluate starts it): %s", err)
        return
    key = Path(base_model_dir).resolve()
    with _launched_lock:
        earlier = _launched.pop(key, None)
        _launched[key] = probe
    if earlier is not None:
        earlier.close()


def discard_launched() -> None:
    """End every probe :func:`launch_ahead` started that nothing took (the run ended before evaluating)."""
    with _launched_lock:
        probes = list(_launched.values())
        _launched.clear()
    for probe in probes:
        probe.close()


def _take_launched(base_model_dir: Path) -> Probe | None:
    with _launched_lock:
        probe = _launched.pop(Path(base_model_dir).resolve(), None)
    if probe is not None and not probe.alive():
        # Killed while the candidate trained (the OOM killer, an operator), or a base that would not load: a
        # fresh probe is started, and reports its own error if the cause is still there.
        log.warning(
            "the load probe started during training ended (exit %s): %s; starting another",
            probe._proc.returncode,
            probe.stderr_tail() or "no output",
        )
        probe.close()
        return None
    return probe


def measure(adapter_dir: Path, base_model_dir: Path, texts: list[str]) -> dict[str, float]:
    """Run the serving probe to the end and return what it measured (plus ``adapter_mb``).

    Raises:
        TailorError: there is no text to send, or the probe failed or timed out.
    """
    with Probe.start(adapter_dir, base_model_dir, texts) as probe:
        return probe.result()


def run(
    measured: dict[str, float], policy: LoadPolicy, *, out_dir: Path | None = None, host: str | None = None
) -> CheckResult:
    """Judge the candidate against the bare base timed beside it, and its memory, under the ``load`` section.

    The bare base's spread comes first: above ``load.max_base_spread`` the gate calls the check not
    judged (machine too busy) instead of reading the ratios. ``load.max_p95_ms`` is judged only on
    ``load.reference_host`` (``host`` defaults to this machine's name).
    """
    host = host or socket.gethostname()
    thresholds = [
        Threshold.judge("base_spread", "load.max_base_spread", measured["base_spread"], "<=", policy.max_base_spread),
        Threshold.judge("p95_ratio", "load.max_p95_ratio", measured["p95_ratio"], "<=", policy.max_p95_ratio),
        Threshold.judge(
            "throughput_ratio",
            "load.min_throughput_ratio",
            measured["throughput_ratio"],
            ">=",
            policy.min_throughput_ratio,
        ),
        Threshold.judge("rss_mb", "load.max_rss_mb", measured["rss_mb"], "<=", policy.max_rss_mb),
        Threshold.judge("adapter_mb", "load.max_adapter_mb", measured["adapter_mb"], "<=", policy.max_adapter_mb),
    ]
    absolute = policy.max_p95_ms is not None and policy.reference_host == host
    if absolute:
        thresholds.append(Threshold.judge("p95_ms", "load.max_p95_ms", measured["p95_ms"], "<=", policy.max_p95_ms))
    details = {
        **measured,
        "host": host,
        "absolute_limits": (
            "judged: this is the reference host"
            if absolute
            else f"not judged: reference host {policy.reference_host or '(none named)'}, measured on {host}"
        ),
        "summary": (
            f"against the bare base: p50 {measured['p50_ratio']:.2f}x, p95 {measured['p95_ratio']:.2f}x, "
            f"throughput {measured['throughput_ratio']:.2f}x (p95 {measured['p95_ms']:.1f} ms vs "
            f"{measured['base_p95_ms']:.1f} ms at batch 1; bare base spread p95/p50 "
            f"{measured['base_spread']:.2f}; load average {measured['load_average_before']:.1f} on "
            f"{measured['cpu_count']:.0f} cores, probe at nice {measured.get('niceness', 0):.0f}); serving RSS {measured['rss_mb']:.0f} MB; adapter "
            f"{measured['adapter_mb']:.2f} MB"
        ),
    }
    return finish(NAME, thresholds, details, out_dir=out_dir)
