"""Identity-preserving face synthesis network of seed 003 (Vine, "Training Facial Recognition with Synthetic
Faces", §3.1, §4.1.2; after Bao et al., CVPR 2018) as a LightningModule.

A frozen, differentiable **identity encoder** I (any zoo FaceNet/ArcFace checkpoint, ``model.identity_ckpt``),
a trainable attribute encoder A (μ, log σ², reparametrised), generator G on ``[f_I(x^s), f_A(x^a)]`` with a
to-RGB layer at every scale, discriminator D with last-layer features, and an identity GAN (Gaussian → identity
vector) trained on the data's identity vectors (``zoo.gan.identity``).

Every training step (manual optimisation, one batch ``x``):

1. **x^a = x^s = x** (reconstruction): D step on ``L_D`` (Eq. 6, real ``x`` vs ``x' = G(f_I(x), f_A(x))``);
   then ``L_A = L_GR + λ_KL L_KL`` (Eq. 7) for A and ``L_G = L_GR + λ_GD L_GD + λ_GI L_GI`` (Eq. 8) for G.
   The two are separated by two backward passes: ``λ_GD L_GD + λ_GI L_GI`` first (A's gradients from it are
   dropped: those losses train G only), then ``L_GR + λ_KL L_KL``.
2. **x^a ≠ x^s** (attribute transfer): ``x^a`` is another image of the batch (the batch rolled by one), the
   identity is ``f_I(x)``, or, on every ``idgan_every``-th (paper: second) such step, an identity drawn from the
   identity GAN; ``L_A = L_G = λ_A L_GR(x^a, x')`` (Eqs. 9-10, λ_A = 0.1).
3. Identity GAN: one standard GAN step (D_id on ``f_I(x)`` vs samples, then the generator).

Paper defaults: Adam, lr 1e-4 (A, G), 4e-4 (D), batch 8, λ_KL 1e-4, λ_GD 5e-4, λ_GI 1, λ_A 0.1; 64 px here
(``image_size: 128`` for the paper's six scales, on a GPU). Input batches of another size are area-resized to
``image_size``; the identity encoder sees its own input size (bilinear resize of real and generated images).

The DCGAN64 weights of ``zoo.gan`` cannot initialise any part: that generator maps a 100-d z through transposed
convolutions (512-256-128-64 channels, no per-scale to-RGB), while this G takes ``identity_dim + attr_dim``
inputs and grows by Upsample + 3×3 convolutions (the paper's checkerboard fix), so no layer has the same shape or
role; D and A are encoders, which the DCGAN wheel does not ship. All start from DCGAN initialisation.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_info

from zoo.checks import check_choice, check_int, check_nonnegative, check_positive, invalid
from zoo.gan.identity import (AttributeEncoder, Discriminator, Generator, IdentityGAN, discriminator_loss,
                              feature_matching_loss, generator_gan_loss, identity_loss, kl_loss,
                              multiscale_reconstruction_loss)
from zoo.models.base import ZooModule, plain


def load_identity_encoder(path: str, what: str = "model.identity_ckpt") -> tuple[torch.nn.Module, dict[str, Any]]:
    """The embedder of a zoo recognition checkpoint and its spec ``{"class", "hparams"}``; ``ValueError`` naming
    ``what`` when the file is not a zoo recognition (FaceNet/ArcFace) checkpoint."""
    from zoo.checkpoint import class_path, load_run_checkpoint
    from zoo.models.recognition import EmbeddingModel

    if not path:
        raise invalid(what, path, "not set", "a zoo FaceNet/ArcFace checkpoint (.ckpt written by train.py "
                                             "model=facenet_triplet|arcface)")
    cls, _, _ = load_run_checkpoint(path, expected=EmbeddingModel, what=what)
    model = cls.load_from_checkpoint(path, map_location="cpu", weights_only=False)
    spec = {"class": class_path(cls), "hparams": plain(dict(model.hparams))}
    return model.embedder, spec


def build_identity_encoder(spec: Mapping[str, Any]) -> torch.nn.Module:
    """A recognition model's embedder from a spec (weights come from the identity-GAN checkpoint)."""
    from hydra.utils import get_class

    return get_class(spec["class"])(**dict(spec["hparams"])).embedder


class IdentityGanModel(ZooModule):
    """See module docstring. Config keys ``model.<name>``; ``encoder_spec`` is filled in by the model itself
    (so a checkpoint rebuilds without the identity checkpoint file)."""

    task = "identities"
    default_monitor = ("val/identity_loss", "min")

    def __init__(self, identity_ckpt: str | None = None, identity_dim: int | None = None, image_size: int = 64,
                 channels: int | None = 3, attr_dim: int = 128, width: int = 32, max_width: int = 256,
                 attr_hidden: int = 512, d_features: int = 512, lambda_kl: float = 1e-4, lambda_gd: float = 5e-4,
                 lambda_gi: float = 1.0, lambda_a: float = 0.1, lr_ag: float = 1e-4, lr_d: float = 4e-4,
                 betas: Sequence[float] = (0.5, 0.999), idgan_lr: float = 2e-4, idgan_noise: int = 64,
                 idgan_hidden: int = 256, idgan_every: int = 2, reconstruction_pixels: str = "sum",
                 grid_size: int = 4, gradient_clip: float | None = 5.0, encoder_spec: Mapping[str, Any] | None = None,
                 num_identities: int | None = None) -> None:
        super().__init__()
        if image_size not in (32, 64, 128, 256):
            raise invalid("model.image_size", image_size, "not a generator resolution", "64 (default), 128 or 32")
        channels = 3 if channels is None else check_int("model.channels", channels, low=1, high=3)
        for k, v in (("lambda_kl", lambda_kl), ("lambda_gd", lambda_gd), ("lambda_gi", lambda_gi),
                     ("lambda_a", lambda_a)):
            check_nonnegative(f"model.{k}", v)
        for k, v in (("lr_ag", lr_ag), ("lr_d", lr_d), ("idgan_lr", idgan_lr)):
            check_positive(f"model.{k}", v)
        check_choice("model.reconstruction_pixels", reconstruction_pixels, ("sum", "mean"))
        idgan_every = check_int("model.idgan_every", idgan_every, low=0)
        if encoder_spec is None:
            encoder, encoder_spec = load_identity_encoder(identity_ckpt)
            from_file = True
        else:
            encoder, from_file = build_identity_encoder(encoder_spec), False
        enc_h = dict(encoder_spec["hparams"])
        enc_dim = int(enc_h.get("embedding_dim", 128))
        if identity_dim is not None and identity_dim != enc_dim:
            raise invalid("model.identity_ckpt", identity_ckpt, f"its embedding has {enc_dim} dimensions but "
                          f"model.identity_dim={identity_dim}", "a checkpoint whose embedding_dim equals "
                          "model.identity_dim (or model.identity_dim: null to take it from the checkpoint)")
        self.encoder = encoder.eval()
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        self.encoder_size = int(enc_h.get("image_size") or 96)
        self.encoder_channels = int(enc_h.get("channels") or 3)
        self.identity_dim = enc_dim
        self.A = AttributeEncoder(image_size, channels, attr_dim, width, max_width, attr_hidden)
        self.G = Generator(enc_dim, attr_dim, image_size, channels, width, max_width)
        self.D = Discriminator(image_size, channels, width, max_width, d_features)
        self.idgan = IdentityGAN(enc_dim, idgan_noise, idgan_hidden)
        self.image_size, self.channels, self.attr_dim = image_size, channels, attr_dim
        self.lambdas = {"kl": lambda_kl, "gd": lambda_gd, "gi": lambda_gi, "a": lambda_a}
        self.lrs, self.betas = {"ag": lr_ag, "d": lr_d, "idgan": idgan_lr}, tuple(betas)
        self.idgan_every, self.pixels, self.grid_size = idgan_every, reconstruction_pixels, int(grid_size)
        self.attribute_steps = 0
        self.gradient_clip = None if gradient_clip is None else check_positive("model.gradient_clip", gradient_clip)
        self.automatic_optimization = False
        self.save_hyperparameters(plain({
            "identity_ckpt": identity_ckpt, "identity_dim": enc_dim, "image_size": image_size, "channels": channels,
            "attr_dim": attr_dim, "width": width, "max_width": max_width, "attr_hidden": attr_hidden,
            "d_features": d_features, "lambda_kl": lambda_kl, "lambda_gd": lambda_gd, "lambda_gi": lambda_gi,
            "lambda_a": lambda_a, "lr_ag": lr_ag, "lr_d": lr_d, "betas": list(betas), "idgan_lr": idgan_lr,
            "idgan_noise": idgan_noise, "idgan_hidden": idgan_hidden, "idgan_every": idgan_every,
            "reconstruction_pixels": reconstruction_pixels, "grid_size": grid_size,
            "gradient_clip": gradient_clip, "encoder_spec": encoder_spec,
            "num_identities": num_identities}))
        if from_file:
            rank_zero_info(f"[zoo] identity encoder: {encoder_spec['class']} ({enc_dim}-d, "
                           f"{self.encoder_size} px) from {identity_ckpt}, frozen")

    # ---- networks -----------------------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "IdentityGanModel":
        super().train(mode)
        self.encoder.eval()  # frozen: BatchNorm statistics and dropout stay in inference mode
        return self

    def to_generator_size(self, x: torch.Tensor) -> torch.Tensor:
        s = self.image_size
        if x.shape[-1] == s:
            return x
        return F.interpolate(x, size=(s, s), mode="area" if x.shape[-1] > s else "bilinear", align_corners=None)

    def identity(self, x: torch.Tensor) -> torch.Tensor:
        """``f_I(x)``: unit identity vectors of images in [-1, 1] (resized/converted to the encoder's input)."""
        if x.shape[-1] != self.encoder_size:
            x = F.interpolate(x, size=(self.encoder_size, self.encoder_size), mode="bilinear", align_corners=False)
        if x.shape[1] != self.encoder_channels:
            x = x.mean(1, keepdim=True) if self.encoder_channels == 1 else x.expand(-1, self.encoder_channels, -1, -1)
        return F.normalize(self.encoder(x), dim=1)

    @torch.no_grad()
    def synthesize(self, identity: torch.Tensor, attributes: torch.Tensor) -> torch.Tensor:
        """``G(identity, attributes)`` at full resolution (no gradient)."""
        return self.G.synthesize(identity, attributes)

    @torch.no_grad()
    def attributes(self, x: torch.Tensor, sample: bool = False) -> torch.Tensor:
        """``f_A(x)`` (μ when ``sample`` is false)."""
        return self.A(self.to_generator_size(x), sample=sample)[0]

    def forward(self, identity_image: torch.Tensor, attribute_image: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Synthesise the face of ``identity_image``'s identity with ``attribute_image``'s attributes (μ)."""
        att = identity_image if attribute_image is None else attribute_image
        return {"image": self.G.synthesize(self.identity(identity_image), self.A(self.to_generator_size(att),
                                                                                 sample=False)[0])}

    # ---- optimisation ----------------------------------------------------------------------------------------------
    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        b = self.betas
        return [torch.optim.Adam(self.A.parameters(), lr=self.lrs["ag"], betas=b),
                torch.optim.Adam(self.G.parameters(), lr=self.lrs["ag"], betas=b),
                torch.optim.Adam(self.D.parameters(), lr=self.lrs["d"], betas=b),
                torch.optim.Adam(self.idgan.generator.parameters(), lr=self.lrs["idgan"], betas=b),
                torch.optim.Adam(self.idgan.discriminator.parameters(), lr=self.lrs["idgan"], betas=b)]

    def setup(self, stage: str) -> None:
        super().setup(stage)
        t = self._trainer
        strategy = getattr(t, "strategy", None)
        if strategy is not None and hasattr(strategy, "_ddp_kwargs"):
            # each manual backward reaches only some sub-networks (D step, A/G steps, identity GAN)
            strategy._ddp_kwargs["find_unused_parameters"] = True
        if stage == "fit":
            self.check_identity_data()

    def check_identity_data(self) -> None:
        """The training split needs >= 2 identities and identities with >= 2 images (see the error text)."""
        dm = getattr(self._trainer, "datamodule", None)
        ds = (getattr(dm, "datasets", None) or {}).get("train") if dm is not None else None
        labels = getattr(ds, "identities", None)
        if labels is None:
            return
        counts = np.bincount(np.asarray(labels, np.int64))
        counts = counts[counts > 0]
        if len(counts) < 2 or counts.max() < 2:
            raise ValueError(
                f"data: the training split has {len(counts)} identities with at most {int(counts.max())} image(s) "
                f"each; model=identity_gan needs at least 2 identities, and identities with at least 2 images: the "
                f"x^a != x^s step gives an identity the attributes of another image, and with one image per identity "
                f"f_I(x^s) and f_A(x^s) describe the same single photo, so identity and attributes cannot be told "
                f"apart (use a data set with several images per identity, e.g. data.min_images_per_identity=2)")
        if dm is not None and getattr(dm, "batch_size", 2) < 2:
            raise invalid("data.batch_size", dm.batch_size, "the x^a != x^s step takes x^a from another image of the "
                          "batch", "a batch size >= 2 (paper: 8)")

    def _clip(self, *optimizers: Any) -> None:
        """Gradient-norm clipping per optimiser (``model.gradient_clip``; the trainer's does not apply to manual
        optimisation)."""
        if self.gradient_clip:
            for opt in optimizers:
                self.clip_gradients(opt, gradient_clip_val=self.gradient_clip, gradient_clip_algorithm="norm")

    def training_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        opt_a, opt_g, opt_d, opt_ig, opt_id = self.optimizers()
        lam = self.lambdas
        x_in = batch["image"]
        x = self.to_generator_size(x_in)
        bs = x.shape[0]
        with torch.no_grad():
            id_s = self.identity(x_in)
        # ---- step 1: x^a = x^s --------------------------------------------------------------------------------
        f_a, mu, logvar = self.A(x)
        outs = self.G(id_s, f_a)
        fake = outs[-1]
        logit_real, feat_real = self.D(x)
        logit_fake, _ = self.D(fake.detach())
        loss_d = discriminator_loss(logit_real, logit_fake)
        self.guard("discriminator loss", loss_d)
        opt_d.zero_grad()
        self.manual_backward(loss_d)
        self._clip(opt_d)
        opt_d.step()
        l_gr = multiscale_reconstruction_loss(x, outs, pixels=self.pixels)
        l_kl = kl_loss(mu, logvar)
        _, feat_fake = self.D(fake)
        l_gd = feature_matching_loss(feat_real, feat_fake)
        l_gi = identity_loss(id_s, self.identity(fake))
        self.guard("reconstruction loss", l_gr)
        opt_a.zero_grad()
        opt_g.zero_grad()
        self.manual_backward(lam["gd"] * l_gd + lam["gi"] * l_gi, retain_graph=True)
        for p in self.A.parameters():  # Eq. 7: A is trained by L_GR + λ_KL L_KL only
            p.grad = None
        self.manual_backward(l_gr + lam["kl"] * l_kl)
        self._clip(opt_a, opt_g)
        opt_a.step()
        opt_g.step()
        # ---- step 2: x^a != x^s -------------------------------------------------------------------------------
        self.attribute_steps += 1
        from_gan = self.idgan_every > 0 and self.attribute_steps % self.idgan_every == 0
        x_a = x.roll(1, 0)
        id_2 = self.idgan.sample(bs).detach() if from_gan else id_s
        f_a2, _, _ = self.A(x_a)
        outs2 = self.G(id_2, f_a2)
        l_ar = multiscale_reconstruction_loss(x_a, outs2, pixels=self.pixels)
        opt_a.zero_grad()
        opt_g.zero_grad()
        self.manual_backward(lam["a"] * l_ar)
        self._clip(opt_a, opt_g)
        opt_a.step()
        opt_g.step()
        with torch.no_grad():
            l_gi2 = identity_loss(id_2, self.identity(outs2[-1].detach()))
        # ---- identity GAN -------------------------------------------------------------------------------------
        sample = self.idgan.sample(bs)
        loss_idd = discriminator_loss(self.idgan.judge(id_s), self.idgan.judge(sample.detach()))
        opt_id.zero_grad()
        self.manual_backward(loss_idd)
        opt_id.step()
        loss_idg = generator_gan_loss(self.idgan.judge(sample))
        opt_ig.zero_grad()
        self.manual_backward(loss_idg)
        opt_ig.step()
        logs = {"identity_loss": l_gi, "reconstruction": l_gr, "kl": l_kl, "feature_matching": l_gd,
                "d_loss": loss_d, "attribute_reconstruction": l_ar,
                ("attribute_identity_loss_gan" if from_gan else "attribute_identity_loss"): l_gi2,
                "idgan_d": loss_idd, "idgan_g": loss_idg}
        for k, v in logs.items():
            self.log(f"train/{k}", v.detach(), prog_bar=k in ("identity_loss", "reconstruction"), on_step=True,
                     on_epoch=True, batch_size=bs)

    # ---- evaluation ---------------------------------------------------------------------------------------------------
    def _evaluate(self, batch: Mapping[str, torch.Tensor], split: str) -> None:
        x_in = batch["image"]
        x = self.to_generator_size(x_in)
        id_s = self.identity(x_in)
        mu = self.A(x, sample=False)[1]
        outs = self.G(id_s, mu)
        bs = x.shape[0]
        vals = {"identity_loss": identity_loss(id_s, self.identity(outs[-1])),
                "reconstruction": multiscale_reconstruction_loss(x, outs, pixels=self.pixels)}
        if bs > 1:  # identity kept under another image's attributes
            vals["transfer_identity_loss"] = identity_loss(id_s, self.identity(self.G.synthesize(id_s, mu.roll(1, 0))))
        for k, v in vals.items():
            self.log(f"{split}/{k}", v, prog_bar=k == "identity_loss", on_epoch=True, batch_size=bs, sync_dist=True)

    def validation_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["identity_gan"] = {"attribute_steps": self.attribute_steps}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.attribute_steps = int((checkpoint.get("identity_gan") or {}).get("attribute_steps", 0))

    # ---- figures ----------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample_grid(self, identity_images: torch.Tensor, attribute_images: torch.Tensor) -> np.ndarray:
        """uint8 RGB grid as the paper's Fig. 7: the top row holds the attribute images, the left column the
        identity images, cell (i, j) = ``G(f_I(identity_i), μ_A(attribute_j))``."""
        from zoo.gan.plots import image_grid

        was = self.training
        self.eval()
        ids = self.identity(identity_images)
        att = self.A(self.to_generator_size(attribute_images), sample=False)[1]
        n, m = len(ids), len(att)
        faces = self.G.synthesize(ids.repeat_interleave(m, 0), att.repeat(n, 1))
        self.train(was)

        def u8(t: torch.Tensor) -> np.ndarray:
            t = self.to_generator_size(t[None])[0]
            t = t.expand(3, -1, -1) if t.shape[0] == 1 else t
            return ((t.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()

        blank = np.full((self.image_size, self.image_size, 3), 255, np.uint8)
        rows = [[blank] + [u8(a) for a in attribute_images]]
        for i in range(n):
            rows.append([u8(identity_images[i])] + [u8(faces[i * m + j]) for j in range(m)])
        return image_grid(rows)
