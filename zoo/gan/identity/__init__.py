"""Identity-preserving face synthesis (seed 003, Vine; after Bao et al. 2018): attribute encoder, multi-scale
generator, discriminator with last-layer features, identity GAN, the losses of Eqs. 1-10 and the new-identity
search. Pure torch/numpy/scipy (no Lightning, Hydra or W&B). See docs/identity_gan.md."""
from zoo.gan.identity.losses import (discriminator_loss, feature_matching_loss, generator_gan_loss, identity_loss,
                                     kl_loss, multiscale_reconstruction_loss, resize_to)
from zoo.gan.identity.nets import AttributeEncoder, Discriminator, Generator, IdentityGAN
from zoo.gan.identity.search import (PAPER_THRESHOLDS, SearchResult, Thresholds, pairwise_distances,
                                     scaled_thresholds, search_new_identities, sphere_point)

__all__ = ["AttributeEncoder", "Discriminator", "Generator", "IdentityGAN", "identity_loss", "kl_loss",
           "multiscale_reconstruction_loss", "feature_matching_loss", "discriminator_loss", "generator_gan_loss",
           "resize_to", "Thresholds", "PAPER_THRESHOLDS", "SearchResult", "search_new_identities",
           "scaled_thresholds", "sphere_point", "pairwise_distances"]
