"""Learning curve of the real-data CPU recipe (issue 11 item 1): validation NME vs training wall minutes.

    python train.py experiment=real_cpu data=afw_helen paths.output_dir=outputs/real_cpu      # 30 min
    python benchmarks/real_cpu_curve.py outputs/real_cpu [--out docs/img/real_cpu_curve.png] [--label ...]

Reads the run's CSV log (``<run>/csv/version_*/metrics.csv``: ``val/nme`` with ``time/train_min``, which
zoo.callbacks.wall_clock_lr logs at every validation; ``test/*`` after the final test), draws inter-ocular val NME
(%) against training minutes (validation included, Lightning's Timer) and marks the test NME of the best
checkpoint, and prints the curve as a table row per 5 minutes. Several runs may be given (one curve each).
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path


def read_run(run: Path) -> dict:
    files = sorted(run.glob("csv/version_*/metrics.csv"))
    if not files:
        raise ValueError(f"{run}: no csv/version_*/metrics.csv (was the run logged with logger=csv?)")
    rows = [r for f in files for r in csv.DictReader(open(f))]
    curve = sorted((float(r["time/train_min"]), float(r["val/nme"])) for r in rows
                   if r.get("val/nme") and r.get("time/train_min"))
    test = {k: float(v) for r in rows for k, v in r.items() if k.startswith("test/") and v not in ("", None)}
    return {"curve": curve, "test": test}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--label", action="append", default=None, help="one per run")
    ap.add_argument("--out", type=Path, default=Path("docs/img/real_cpu_curve.png"))
    ap.add_argument("--title", default="experiment=real_cpu data=afw_helen (2 CPU cores)")
    a = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for i, run in enumerate(a.runs):
        r = read_run(run)
        label = a.label[i] if a.label and i < len(a.label) else run.name
        t, e = zip(*r["curve"])
        ax.plot(t, [100 * x for x in e], label=f"{label}: val NME")
        if "test/nme" in r["test"]:
            ax.scatter([t[-1]], [100 * r["test"]["test/nme"]], marker="*", s=120, zorder=3,
                       label=f"{label}: test NME {100 * r['test']['test/nme']:.2f} %")
        print(f"{label}: " + " | ".join(f"{m:.0f} min {100 * min(x for tt, x in r['curve'] if tt <= m + 1e-9):.2f} %"
                                         for m in range(5, int(t[-1]) + 1, 5)) + f" | end {t[-1]:.1f} min")
        if r["test"]:
            keys = ("test/nme", "test/fr@0.08", "test/auc@0.08", "test/spearman", "test/nme_discard30_val",
                    "test/nme_discard30_random")
            print("  " + ", ".join(f"{k}={r['test'][k]:.4f}" for k in keys if k in r["test"]))
    ax.axhline(4.5, color="grey", ls="--", lw=0.8, label="target 4.5 %")
    ax.set_xlabel("training wall time (min, validation included)")
    ax.set_ylabel("inter-ocular NME (%)")
    ax.set_ylim(3, 10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(a.title, fontsize=9)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.out, dpi=110, bbox_inches="tight")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
