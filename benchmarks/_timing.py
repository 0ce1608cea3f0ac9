"""Timing helpers shared by the benchmark scripts (run as ``python benchmarks/<name>.py``)."""
from __future__ import annotations

import time

import lightning as L


class StepTimer(L.Callback):
    """Wall time of ``trainer.fit`` steps after ``warmup`` steps: ``t1 - t0`` spans the timed steps."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.t0, self.t1 = warmup, None, None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.warmup:
            self.t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.t1 = time.perf_counter()


def measure_data_wait(loader, step, steps: int, warmup: int) -> tuple[float, float, dict]:
    """(wait, compute, last batch): seconds spent in ``next(loader)`` and in ``step(batch)`` over ``steps`` steps
    after ``warmup`` untimed ones, restarting the loader at the end of an epoch (the training-loop data-wait
    measurement of the data-loading benchmarks)."""
    it = iter(loader)
    wait = compute = 0.0
    batch = None
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:  # next epoch (its start-up counts as waiting, as in training)
            it = iter(loader)
            batch = next(it)
        t1 = time.perf_counter()
        step(batch)
        t2 = time.perf_counter()
        if i >= warmup:
            wait += t1 - t0
            compute += t2 - t1
    return wait, compute, batch


def cached_step_seconds(step, batch, steps: int) -> float:
    """Seconds per ``step(batch)`` on one cached batch: the compute-only baseline of :func:`measure_data_wait`."""
    t = time.perf_counter()
    for _ in range(steps):
        step(batch)
    return (time.perf_counter() - t) / steps


def interleaved_latency(fns: dict, inputs: list, rounds: int = 1, warmup: int = 3) -> tuple[dict, dict]:
    """(wall, cpu): median seconds per call of each ``fns[name](x)`` over ``inputs`` (``rounds`` passes), the methods
    taking turns on every input so that they share the machine's load at each moment. ``cpu`` is the calling
    thread's CPU time (``time.thread_time``): on a shared machine where this process is preempted (nice 19 beside a
    training) it leaves out the time spent waiting for a core, which wall time does not; it is the compute latency
    of single-threaded calls (torch/onnxruntime at 1 thread and dlib run in the calling thread)."""
    import statistics

    for f in fns.values():
        for x in inputs[:warmup]:
            f(x)
    wall: dict = {k: [] for k in fns}
    cpu: dict = {k: [] for k in fns}
    for _ in range(rounds):
        for x in inputs:
            for k, f in fns.items():
                c0, t0 = time.thread_time(), time.perf_counter()
                f(x)
                wall[k].append(time.perf_counter() - t0)
                cpu[k].append(time.thread_time() - c0)
    return ({k: statistics.median(v) for k, v in wall.items()}, {k: statistics.median(v) for k, v in cpu.items()})


def cpu_seconds() -> float:
    """CPU seconds (user + system) used so far by this process and its children, live ones included (DataLoader
    workers): /proc on Linux, NaN elsewhere. Unlike wall time it hardly depends on other jobs' load."""
    import os
    import resource
    from pathlib import Path

    try:
        tick = os.sysconf("SC_CLK_TCK")
        pids = set()
        for t in Path("/proc/self/task").iterdir():
            pids.update(int(p) for p in (t / "children").read_text().split())
        total = 0.0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
            except (OSError, IndexError, ValueError):
                pass
    except OSError:
        return float("nan")
    me, dead = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return total + me.ru_utime + me.ru_stime + dead.ru_utime + dead.ru_stime


class EpochTimer(L.Callback):
    """Wall and CPU seconds (:func:`cpu_seconds`) of every training epoch (``on_train_epoch_start`` to
    ``on_train_epoch_end``, which includes validation when it runs; benchmarks that compare training epochs switch
    validation off)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.cpu: list[float] = []
        self._t0 = self._c0 = 0.0

    def on_train_epoch_start(self, trainer, pl_module):
        self._t0, self._c0 = time.perf_counter(), cpu_seconds()

    def on_train_epoch_end(self, trainer, pl_module):
        self.seconds.append(time.perf_counter() - self._t0)
        self.cpu.append(cpu_seconds() - self._c0)


def _spin() -> None:  # pragma: no cover - runs in a child process until terminated
    x = 0
    while True:
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF


class Busy:
    """``with Busy(n):`` keeps ``n`` extra processes spinning on the CPU (a second busy job on the machine).
    They inherit this process's niceness, so a benchmark under ``nice -n 19`` stays at 19."""

    def __init__(self, n: int) -> None:
        self.n, self.procs = int(n), []

    def __enter__(self) -> "Busy":
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.procs = [ctx.Process(target=_spin, daemon=True) for _ in range(self.n)]
        for p in self.procs:
            p.start()
        return self

    def __exit__(self, *exc) -> None:
        for p in self.procs:
            p.terminate()
            p.join()
