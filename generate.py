"""Write a 3DMM-synthetic dataset to disk: ``python generate.py [key=value ...]`` (config: configs/generate.yaml).

Examples::

    python generate.py                                           # the data=synthetic_3dmm splits as 300-W folders
    python generate.py data=synthetic_3dmm_identities            # identity folders (CASIA-WebFace style)
    python generate.py data=synthetic_3dmm_identities data.num_identities=10000 data.images_per_identity=100 \\
        shard=3/16 splits=[train]                                 # SYN-1M, shard 3 of 16 (array job)
    python generate.py grid_only=true                            # just the sample grid (run folder)
    python generate.py grid_only=true grid=docs/img/synthetic_grid.png   # refresh the README figure
    python generate.py data=gan_augmented data.base=afw_helen out_dir=data_out/gan_afw_helen   # GAN copies (seed 004)
    python generate.py data=gan_identities data.synthesis_ckpt=<identity_gan.ckpt> out_dir=data_out/gan_identities
                                                                  # Reconstructed / New Faces / New Identities (seed 003)

Images + .pts (landmarks) or identity folders, a CSV of all parameters per split, resumable (complete files are
skipped), sharded; see zoo/synth/export.py.
"""
from __future__ import annotations

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from zoo.datamodules.synthetic import split_sizes
from zoo.synth.export import draw_grid, parse_shard, write_split
from zoo.synth.generator import FaceGenerator, GeneratorConfig
from zoo.synth.loaders import load_model

log = logging.getLogger("generate")
GEN_KEYS = ("image_size", "grayscale", "scheme", "landmark_mode", "yaw", "pitch", "roll", "light_prior", "light_path",
            "light_scale", "shape_scale", "color_scale", "expression_scale", "background", "background_path",
            "framing", "face_scale", "supersample", "backend")
STREAMS = {"train": 0, "val": 1, "test": 2}


def generator_config(data: DictConfig, **overrides) -> GeneratorConfig:
    d = OmegaConf.to_container(data, resolve=False)
    kw = {k: d[k] for k in GEN_KEYS if k in d}
    for k in ("yaw", "pitch", "roll"):
        if k in kw:
            kw[k] = tuple(kw[k])
    kw.update(overrides)
    return GeneratorConfig(**kw)


def resolve(path: str | None) -> str | None:
    return None if path is None else str(Path(hydra.utils.to_absolute_path(str(path))))


def run(cfg: DictConfig) -> dict[str, dict[str, int]]:
    """Write the grid and the splits described by ``cfg``; returns {split: {"written": n, "skipped": m}}."""
    data = cfg.data
    if str(data.get("_target_", "")).endswith("GanAugmentedDataModule"):  # data=gan_augmented
        from zoo.datamodules.gan_augmented import write_augmented

        res = write_augmented(hydra.utils.instantiate(data), hydra.utils.to_absolute_path(cfg.out_dir), cfg.image_format)
        log.info("GAN-augmented copies: %d written -> %s (grid: %s)", res["written"], res["dir"], res.get("grid"))
        return {"train": {"written": res["written"], "skipped": 0}}
    if str(data.get("_target_", "")).endswith("GanIdentitiesDataModule"):  # data=gan_identities (seed 003)
        dm = hydra.utils.instantiate(data)
        sets = list(cfg.get("identity_sets") or ("reconstructed", "new_faces", "new_identities"))
        man = dm.generate(hydra.utils.to_absolute_path(cfg.out_dir), sets)
        for name, r in man["sets"].items():
            log.info("%s: %d written, %d dropped (no face found) -> %s", name, r["written"], r["dropped_no_face"],
                     Path(hydra.utils.to_absolute_path(cfg.out_dir)) / name)
        if "search" in man:
            log.info("new-identity search: %s", man["search"])
        return {name: {"written": r["written"], "skipped": r["dropped_no_face"]} for name, r in man["sets"].items()}
    sizes = split_sizes(data.task, data.num_identities, data.images_per_identity, data.val_identities,
                        data.get("val_images_per_identity"), data.test_identities, data.get("test_images_per_identity"))
    results: dict[str, dict[str, int]] = {}
    model = load_model(data.model, resolve(data.get("model_path")), resolve(data.get("landmark_mapping")),
                       resolve(data.get("contour")))
    shard = parse_shard(cfg.shard)
    out_dir = Path(hydra.utils.to_absolute_path(cfg.out_dir))
    if cfg.grid and shard[0] == 0:
        gcfg = generator_config(data, image_size=int(cfg.grid_image_size), grayscale=False, supersample=2)
        path = Path(hydra.utils.to_absolute_path(cfg.grid))
        draw_grid(FaceGenerator(model, gcfg), path, int(cfg.grid_rows), int(cfg.grid_cols), int(data.seed))
        log.info("sample grid: %s", path)
    if cfg.grid_only:
        return results
    gen = FaceGenerator(model, generator_config(data))
    layout = cfg.layout or data.task
    for split in cfg.splits:
        if split not in STREAMS:
            raise ValueError(f"splits: unknown split {split!r}; expected some of {list(STREAMS)}")
        n, k = sizes[split]
        if n == 0:
            continue
        res = write_split(gen, out_dir, split, STREAMS[split], int(data.seed), int(n), int(k), layout,
                          cfg.image_format, shard, progress=bool(cfg.progress))
        log.info("%s: %d written, %d already complete -> %s", split, res["written"], res["skipped"], out_dir / split)
        results[split] = res
    return results


@hydra.main(config_path="configs", config_name="generate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
