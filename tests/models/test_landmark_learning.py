"""The landmark model learns: it overfits 8 real 300-W faces (afw_68) to a low NME through the full
Lightning stack (loss-stage schedule L2 -> L1 -> Wing, validation head, NaN guard)."""
import lightning as L
import torch

from zoo.datamodules.landmark_folders import LandmarkDataModule
from zoo.models.landmark import LandmarkRegressor


def test_overfits_eight_real_faces(tmp_path, shared_data):
    folder = tmp_path / "faces"
    folder.mkdir()
    for pts in sorted((shared_data / "afw_68").glob("*.pts"))[:8]:
        for f in (pts, pts.with_suffix(".jpg")):
            (folder / f.name).symlink_to(f)
    dm = LandmarkDataModule(root=str(folder), image_size=64, val_fraction=0.0, test_fraction=0.0, batch_size=8,
                            num_workers=0, drop_last=False)
    info = dm.info
    assert info.sizes["train"] == 8
    L.seed_everything(0)
    model = LandmarkRegressor(num_landmarks=68, image_size=64, channels=1, scheme="ibug68", head_hidden=128,
                              validation_warmup_steps=50,
                              loss_schedule=[{"epoch": 0, "loss": "l2"}, {"epoch": 60, "loss": "l1"},
                                             {"epoch": 120, "loss": "wing", "omega": 10.0, "epsilon": 2.0}],
                              optimizer=lambda p: torch.optim.SGD(p, lr=0.003, momentum=0.9, weight_decay=5e-4))
    trainer = L.Trainer(max_epochs=150, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        gradient_clip_val=5.0, accelerator="cpu", limit_val_batches=0)
    trainer.fit(model, datamodule=dm)
    assert model.stage == 2  # ended in the Wing stage

    # independent NME: mean over faces of mean point error / inter-ocular distance (outer eye corners 36, 45)
    model.eval()
    ds = dm.datasets["train"]
    errs = []
    with torch.no_grad():
        for i in range(len(ds)):
            s = ds[i]
            pred = model(s["image"][None])["landmarks"][0]
            iod = torch.linalg.norm(s["landmarks"][36] - s["landmarks"][45])
            errs.append((torch.linalg.norm(pred - s["landmarks"], dim=-1).mean() / iod).item())
    start = []
    for i in range(len(ds)):  # error of the mean shape the model started from
        s = ds[i]
        iod = torch.linalg.norm(s["landmarks"][36] - s["landmarks"][45])
        mean_shape = torch.stack([ds[k]["landmarks"] for k in range(len(ds))]).mean(0)
        start.append((torch.linalg.norm(mean_shape - s["landmarks"], dim=-1).mean() / iod).item())
    nme = sum(errs) / len(errs)
    assert nme < 0.06, f"train-set NME {nme:.4f} after overfitting (mean-shape NME {sum(start) / len(start):.4f})"
    assert nme < 0.5 * sum(start) / len(start)
