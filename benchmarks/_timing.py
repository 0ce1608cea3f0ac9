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
