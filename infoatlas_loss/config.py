"""Architecture hyper-parameters of the InfoAtlas hypernetwork, in one frozen dataclass."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class InfoAtlasConfig:
    """Every architecture number of the estimator (nanoGPT ``GPTConfig`` style).

    Attributes:
        max_dim: dimensions per variable the model sees; x and y are noise-padded up to it,
            wider variables are sliced (k-sliced MI) down to it.
        dim: token / latent width of every attention block.
        num_latents: learned latent queries of the joint and of the marginal path.
        heads: attention heads (``dim`` must be divisible by it).
        joint_depth: self-attention blocks on the joint-path latents.
        marginal_depth: self-attention blocks on the marginal-path latents.
        ff_mult: hidden width multiplier of the feed-forward blocks.
        head_hidden: width of the parameter-generation MLP.
        critic_hidden: hidden widths of the generated critic MLP T_theta(x, y).
        gaussian_critic: add the analytic Gaussian-copula log density ratio (weighted by a
            generated gate) to the generated critic; the DV bound stays the estimator.
        mask_critic: zero the noise-padding and constant columns at the generated critic's
            input, so it sees only data columns (they are independent by construction);
            the hypernetwork still reads the padded tensor.
    """

    max_dim: int = 5
    dim: int = 64
    num_latents: int = 16
    heads: int = 4
    joint_depth: int = 2
    marginal_depth: int = 1
    ff_mult: int = 2
    head_hidden: int = 256
    critic_hidden: tuple[int, ...] = (32, 32)
    gaussian_critic: bool = True
    mask_critic: bool = False

    def __post_init__(self):
        if self.dim % self.heads:
            raise ValueError(f"dim ({self.dim}) must be divisible by heads ({self.heads})")
        if self.max_dim < 1:
            raise ValueError(f"max_dim must be >= 1, got {self.max_dim}")
        object.__setattr__(self, "critic_hidden", tuple(int(h) for h in self.critic_hidden))

    @property
    def critic_layers(self) -> tuple[int, ...]:
        """Widths of the critic from input to output: (2 * max_dim, *critic_hidden, 1)."""
        return (2 * self.max_dim, *self.critic_hidden, 1)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "InfoAtlasConfig":
        return cls(**d)

    @classmethod
    def preset(cls, name: str) -> "InfoAtlasConfig":
        """Named presets: ``"base"`` (shipped weights) and ``"tiny"`` (tests)."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
        return cls(**PRESETS[name])


PRESETS: dict[str, dict] = {
    "base": dict(),
    "base-masked": dict(mask_critic=True),
    "tiny": dict(max_dim=3, dim=16, num_latents=4, heads=2, joint_depth=1, marginal_depth=1,
                 head_hidden=32, critic_hidden=(8,)),
}
