"""``python evaluate.py ckpt_path=... data=identity_folder data.data_dir=<folder>``: every identity of the folder is a
test identity, pairs generated or read from an LFW pairs file; metrics against a brute-force computation."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from _tiny_runs import tiny_facenet, write_face_folder
from conftest import REPO


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return tiny_facenet(tmp_path_factory.mktemp("facenet"))  # 32 px RGB, synthetic data: mean 0, std 1


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    root = tmp_path_factory.mktemp("faces")
    return root, write_face_folder(root, identities=3, images=3, size=40)


def run_evaluate(ckpt, root, tmp_path, *extra):
    from zoo.run import evaluate

    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = compose("evaluate", overrides=[
            f"ckpt_path={ckpt}", "data=identity_folder", f"data.data_dir={root}", "data.image_size=32",
            "data.mean=0", "data.std=1", "data.num_workers=0", "data.num_pairs=12", "data.pair_folds=2",
            f"out_dir={tmp_path / 'eval'}", f"paths.output_dir={tmp_path}", "logger=csv",
            "trainer.enable_progress_bar=false", *extra])
    return evaluate(cfg)


def brute_force_metrics(ckpt, pairs):
    """Cosine scores of (file a, file b, same, fold) pairs from images read and preprocessed by hand, then the
    LFW k-fold accuracy (threshold fitted on the other folds: the most accurate candidate, lowest on ties) and
    the AUC as P(genuine score > impostor score) + ½ P(equal), all by plain loops."""
    from zoo.models.recognition import FaceNetTriplet

    model = FaceNetTriplet.load_from_checkpoint(ckpt, map_location="cpu", weights_only=False).eval()

    def embed(path):
        img = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        img = cv2.resize(img, (32, 32), interpolation=cv2.INTER_AREA)
        x = torch.from_numpy(img.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
        with torch.no_grad():
            return model(x)["embedding"][0].double()

    scores = [float(embed(a) @ embed(b)) for a, b, _, _ in pairs]
    same = [s for _, _, s, _ in pairs]
    folds = [f for _, _, _, f in pairs]

    def accuracy(t, idx):
        return sum((scores[i] >= t) == same[i] for i in idx) / len(idx)

    accs = []
    for k in sorted(set(folds)):
        train = [i for i in range(len(pairs)) if folds[i] != k]
        test = [i for i in range(len(pairs)) if folds[i] == k]
        v = sorted(set(scores[i] for i in train))
        cands = [v[0] - 1.0] + [(a + b) / 2 for a, b in zip(v, v[1:])] + [v[-1] + 1.0]
        best = max(accuracy(t, train) for t in cands)
        t = min(t for t in cands if accuracy(t, train) == best)
        accs.append(accuracy(t, test))
    gen = [s for s, y in zip(scores, same) if y]
    imp = [s for s, y in zip(scores, same) if not y]
    auc = sum((g > i) + 0.5 * (g == i) for g in gen for i in imp) / (len(gen) * len(imp))
    return float(np.mean(accs)), auc


def test_all_identities_of_a_folder_are_the_test_set(ckpt, faces, tmp_path):
    root, files = faces
    res = run_evaluate(ckpt, root, tmp_path)
    dm = res["datamodule"]
    ds = dm.datasets["test"]
    assert dm.datasets["train"] is None and dm.datasets["val"] is None
    assert sorted(map(str, ds.files)) == sorted(str(f) for fs in files.values() for f in fs)
    pairs = dm.pairs("test", with_folds=True)
    assert len(pairs) == 12 and sum(p[2] for p in pairs) == 6
    for i, j, same, _ in pairs:  # genuine pairs: two images of one folder; impostor pairs: two folders
        assert same == (ds.files[i].parent == ds.files[j].parent) and i != j
    out = tmp_path / "eval"
    metrics = json.loads((out / "metrics.json").read_text())
    for png in ("roc.png", "score_histogram.png"):
        assert (out / png).stat().st_size > 1000, png
    assert {"accuracy", "auc", "eer", "tar@far=0.1", "num_pairs"} <= set(metrics)
    acc, auc = brute_force_metrics(ckpt, [(ds.files[i], ds.files[j], s, f) for i, j, s, f in pairs])
    assert metrics["accuracy"] == pytest.approx(acc, abs=1e-6)
    assert metrics["auc"] == pytest.approx(auc, abs=1e-6)


def lfw_pairs(path, sets):
    """An LFW pairs file: header 'S N', then per set N same lines and N different lines."""
    lines = [f"{len(sets)}\t{len(sets[0][0])}"]
    for same, diff in sets:
        lines += [f"{n}\t{a}\t{b}" for n, a, b in same] + [f"{n1}\t{a}\t{n2}\t{b}" for n1, a, n2, b in diff]
    path.write_text("\n".join(lines) + "\n")


def test_lfw_pairs_file_given_as_a_key(ckpt, faces, tmp_path):
    root, _ = faces
    sets = [([("person_0", 1, 2), ("person_1", 1, 3)], [("person_0", 1, "person_1", 2), ("person_1", 3, "person_2", 1)]),
            ([("person_2", 2, 3), ("person_0", 2, 3)], [("person_0", 3, "person_2", 2), ("person_1", 1, "person_2", 3)])]
    lfw_pairs(root / "pairs.txt", sets)
    try:
        res = run_evaluate(ckpt, root, tmp_path, "data.pairs_files={test: pairs.txt}",  # relative: under data_dir
                           "data.pair_pattern='{name}/{name}_{num:04d}.png'")
    finally:
        (root / "pairs.txt").unlink()
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["num_pairs"] == 8
    f = lambda n, k: root / n / f"{n}_{k:04d}.png"  # noqa: E731
    want = [(f(n, a), f(n, b), True, fold) for fold, (same, _) in enumerate(sets) for n, a, b in same] + \
        [(f(n1, a), f(n2, b), False, fold) for fold, (_, diff) in enumerate(sets) for n1, a, n2, b in diff]
    want.sort(key=lambda w: (w[3], not w[2]))  # file order: per set, same lines then different lines
    ds = res["datamodule"].datasets["test"]
    got = [(ds.files[i], ds.files[j], s, fold) for i, j, s, fold in res["datamodule"].pairs("test", with_folds=True)]
    assert got == want
    acc, auc = brute_force_metrics(ckpt, want)
    assert metrics["accuracy"] == pytest.approx(acc, abs=1e-6)
    assert metrics["auc"] == pytest.approx(auc, abs=1e-6)


def test_pairs_file_naming_missing_images_lists_them(ckpt, faces, tmp_path):
    root, _ = faces
    lfw_pairs(tmp_path / "pairs.txt", [([("person_0", 1, 7), ("nobody", 1, 2)],
                                         [("person_0", 1, "person_1", 2), ("person_1", 9, "person_2", 1)])])
    with pytest.raises(FileNotFoundError, match=r"person_0_0007.png.*4 missing image\(s\).*nobody_0001.png.*"
                                                r"person_1_0009.png"):
        run_evaluate(ckpt, root, tmp_path, f"data.pairs_files={{test: {tmp_path / 'pairs.txt'}}}",
                     "data.pair_pattern='{name}/{name}_{num:04d}.png'")


@pytest.mark.parametrize("override,key", [("data.image_size=40", "data.image_size"), ("data.mean=0.5", "data.mean"),
                                          ("data.channels=1", "data.channels")])
def test_input_format_other_than_training_names_the_key(ckpt, faces, tmp_path, override, key):
    root, _ = faces
    with pytest.raises(ValueError, match=rf"{key}=.*trained"):
        run_evaluate(ckpt, root, tmp_path, override)


def test_folder_with_one_identity_names_data_dir(ckpt, tmp_path):
    root = tmp_path / "one"
    write_face_folder(root, identities=1, images=2, size=32)
    with pytest.raises(ValueError, match=r"data.data_dir.*1 identity \(person_0\)"):
        run_evaluate(ckpt, root, tmp_path)


def test_pk_training_on_a_folder_with_single_image_identities_names_key_and_identities(tmp_path):
    """Bad input for P×K: identities with < 2 images cannot form positive pairs -> error naming the key and them."""
    from zoo.run import train

    root = tmp_path / "faces"
    write_face_folder(root, identities=3, images=3, size=32)
    for name in ("loner_a", "loner_b"):
        (root / name).mkdir()
        (root / name / f"{name}_0001.png").write_bytes((root / "person_0" / "person_0_0001.png").read_bytes())
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=[
            "model=facenet_triplet", "data=identity_folder", f"data.data_dir={root}", "data.val_fraction=0",
            "data.test_fraction=0", "data.image_size=32", "data.batch_size=4", "sampler.k=2", "data.num_workers=0",
            f"paths.output_dir={tmp_path / 'run'}", "logger=csv", "trainer.max_epochs=1",
            "trainer.enable_progress_bar=false"])
    with pytest.raises(ValueError, match=r"sampler.small_identities.*2 identities have a single image.*loner_a.*"
                                         r"loner_b.*data.min_images_per_identity=2"):
        train(cfg)
