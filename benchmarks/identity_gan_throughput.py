"""Identity-GAN (seed 003) CPU throughput: training images/s of one full training step (D step, A/G step with
x^a = x^s, A/G step with x^a != x^s, identity-GAN step: forward + backward of A, G, D and the frozen identity
encoder), generation images/s (G only, and G + identity encoder as in the new-identity search), each also as a
ratio to the identity encoder's forward pass measured in the same process (the baseline: ratios survive a busy
machine better than seconds). A random nn4small FaceNet is the identity encoder (weights do not change the cost).

    python benchmarks/identity_gan_throughput.py [--size 64] [--batch 8] [--steps 10] [--threads 1]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def timed(fn, steps: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    t = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - t) / steps


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    import lightning

    from models.test_identity_gan import recognition_ckpt
    from zoo.models.identity_gan import IdentityGanModel

    with tempfile.TemporaryDirectory() as d:
        ck = recognition_ckpt(Path(d) / "facenet.ckpt", embedding_dim=128, image_size=96)
        m = IdentityGanModel(identity_ckpt=ck, image_size=a.size)
    x = torch.rand(a.batch, 3, a.size, a.size) * 2 - 1
    data = [{"image": x, "identity": torch.arange(a.batch), "index": torch.arange(a.batch)}] * (a.steps + 2)

    class Timer(lightning.Callback):  # wall time of the batches after 2 warm-up batches
        t0 = t1 = None

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if batch_idx == 2:
                self.t0 = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.t1 = time.perf_counter()

    timer = Timer()
    trainer = lightning.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                                enable_model_summary=False, max_epochs=1, callbacks=[timer], limit_val_batches=0)
    trainer.fit(m, train_dataloaders=torch.utils.data.DataLoader(data, batch_size=None))
    step = (timer.t1 - timer.t0) / a.steps
    m.eval()
    with torch.no_grad():
        ids = m.identity(x)
        att = m.attributes(x)
        enc = timed(lambda: m.identity(x), a.steps)
        gen = timed(lambda: m.synthesize(ids, att), a.steps)
        gen_enc = timed(lambda: m.identity(m.synthesize(ids, att)), a.steps)
    load = os.getloadavg()[0]
    print(f"| setting | img/s | x identity-encoder forward | (size {a.size}, batch {a.batch}, {a.threads} thread(s), "
          f"load {load:.1f})")
    print("|---|---|---|")
    for name, sec in (("identity encoder forward (baseline)", enc), ("training step (A, G, D, identity GAN; fwd+bwd)", step),
                      ("generation G", gen), ("generation G + identity encoder (search)", gen_enc)):
        print(f"| {name} | {a.batch / sec:.1f} | {enc / sec:.3f} |")


if __name__ == "__main__":
    main()
