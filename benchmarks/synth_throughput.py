"""End-to-end throughput of the synthetic face generator (issue 3).

Parameters (fresh identity per image: no identity-cache hits, the worst case) -> SH-lit, posed, rasterised,
composited image + landmarks + visibility as torch tensors, single process, 1 thread, at 128 px, for
the built-in model (15.2k vertices), the Surrey Face Model (3,448 vertices; skipped when ../shared/data/sfm is
absent) and a BFM-sized mesh (the built-in model rebuilt on a 200×143 grid: 28,602 vertices, 57,000 triangles).
Targets from the issue: >= 300 img/s at SFM size, >= 100 img/s at BFM size. Prints markdown table rows.

    python benchmarks/synth_throughput.py [--size 128] [--n 300]
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import torch  # noqa: E402

from zoo.synth.builtin import builtin_model  # noqa: E402
from zoo.synth.generator import FaceGenerator, GeneratorConfig  # noqa: E402
from zoo.synth.loaders import load_model  # noqa: E402

SFM = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "sfm"


def throughput(model, size: int, n: int, backend: str = "numba") -> tuple[float, float]:
    """(images per wall second, images per CPU second of this process, all its threads)."""
    gen = FaceGenerator(model, GeneratorConfig(image_size=size, backend=backend), identity_cache=0)
    for i in range(5):  # warm-up: numba compilation / cache load, background bank
        gen(0, 10 ** 6 + i, 0)
    t, c = time.perf_counter(), time.process_time()
    for i in range(n):
        out, p = gen(1, i, 0)
        sample = {"image": torch.from_numpy(out["image"]).permute(2, 0, 1), "landmarks": torch.from_numpy(out["landmarks"]),
                  "visible": torch.from_numpy(out["visible"]), "norm": torch.tensor(out["norm"])}
    del sample
    return n / (time.perf_counter() - t), n / (time.process_time() - c)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--gl", action="store_true", help="also time the optional moderngl backend (EGL)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = [("built-in", builtin_model(), None)]
    if (SFM / "sfm_shape_3448.bin").exists():
        rows.append(("SFM", load_model("sfm", str(SFM.resolve())), 300.0))
    else:
        print(f"(SFM skipped: {SFM} absent)")
    rows.append(("BFM-sized", builtin_model(n_theta=200, n_psi=143), 100.0))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, 1 thread, "
          f"{args.size} px, {args.n} images, fresh identity per image")
    print(f"load average before: {os.getloadavg()[0]:.1f} (the machine is shared: img/s per CPU-second is the "
          f"figure comparable across runs; wall img/s shrinks with the load)")
    print("| model | vertices | triangles | img/s (CPU time) | img/s (wall) | target | ratio to target (CPU) |")
    print("|---|---|---|---|---|---|---|")
    for backend in ("numba", "moderngl") if args.gl else ("numba",):
        for name, m, target in rows:
            wall, cpu = throughput(m, args.size, args.n, backend)
            tgt = f"{target:.0f}" if target else "-"
            ratio = f"{cpu / target:.2f}" if target else "-"
            label = name if backend == "numba" else f"{name} (moderngl)"
            print(f"| {label} | {m.num_vertices:,} | {len(m.triangles):,} | {cpu:.0f} | {wall:.0f} | {tgt} | {ratio} |")


if __name__ == "__main__":
    main()
