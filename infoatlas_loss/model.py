"""Dual-path attentive hypernetwork (paper Sec. 3.1): samples in, critic parameters out.

Joint path: every pair (x_i, y_i) is a token; learned latents cross-attend to the tokens,
then self-attend (Perceiver-IO, cost linear in n).  Marginal path: x and y go through
separate MLPs; two latent sets summarise them and attend across (x-summary -> y tokens,
y-summary -> x tokens); the two directions are summed and self-attend.  Fusion: joint
latents query the marginal latents.  A parameter-generation MLP maps the pooled fused
latents to the flat parameter vector of the critic (see ``critic.py``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange, reduce
from torch import nn

from .config import InfoAtlasConfig
from .critic import critic_init, num_critic_params

# helper classes


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim * mult), nn.GELU(),
                                 nn.Linear(dim * mult, dim))

    def forward(self, x):
        return self.net(x)


class Attention(nn.Module):
    """Multi-head attention; ``cross=False`` blocks attend to their own input."""

    def __init__(self, dim: int, heads: int, cross: bool = False):
        super().__init__()
        self.heads = heads
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim) if cross else None
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_kv = nn.Linear(dim, 2 * dim, bias=False)
        self.to_out = nn.Linear(dim, dim)

    def forward(self, x, context=None):
        q_in = self.norm_q(x)
        kv_in = q_in if self.norm_kv is None else self.norm_kv(context)
        q = rearrange(self.to_q(q_in), "b l (h e) -> b h l e", h=self.heads)
        k, v = rearrange(self.to_kv(kv_in), "b n (two h e) -> two b h n e", two=2, h=self.heads)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, h, L, e)
        return self.to_out(rearrange(out, "b h l e -> b l (h e)"))


class Block(nn.Module):
    """Pre-norm attention + feed-forward with residuals."""

    def __init__(self, dim: int, heads: int, ff_mult: int, cross: bool = False):
        super().__init__()
        self.attn = Attention(dim, heads, cross)
        self.ff = FeedForward(dim, ff_mult)

    def forward(self, x, context=None):
        x = x + self.attn(x, context)
        return x + self.ff(x)


def _mlp(d_in: int, dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, dim), nn.GELU(), nn.Linear(dim, dim))


# main class


class InfoAtlas(nn.Module):
    """Hypernetwork mapping a sample set to the parameters of a DV critic.

    Args:
        config: architecture numbers.

    Shape:
        forward(x, y): x (B, n, max_dim), y (B, n, max_dim) normal scores (already
        copula-transformed and noise-padded) -> theta (B, P), P = ``num_critic_params``.
    """

    def __init__(self, config: InfoAtlasConfig):
        super().__init__()
        self.config = c = config
        self.joint_in = _mlp(2 * c.max_dim, c.dim)
        self.joint_latents = nn.Parameter(torch.randn(c.num_latents, c.dim) * 0.02)
        self.joint_cross = Block(c.dim, c.heads, c.ff_mult, cross=True)
        self.joint_self = nn.ModuleList(Block(c.dim, c.heads, c.ff_mult) for _ in range(c.joint_depth))

        self.x_in = _mlp(c.max_dim, c.dim)
        self.y_in = _mlp(c.max_dim, c.dim)
        self.x_latents = nn.Parameter(torch.randn(c.num_latents, c.dim) * 0.02)
        self.y_latents = nn.Parameter(torch.randn(c.num_latents, c.dim) * 0.02)
        self.x_summary = Block(c.dim, c.heads, c.ff_mult, cross=True)
        self.y_summary = Block(c.dim, c.heads, c.ff_mult, cross=True)
        self.x_to_y = Block(c.dim, c.heads, c.ff_mult, cross=True)
        self.y_to_x = Block(c.dim, c.heads, c.ff_mult, cross=True)
        self.marginal_self = nn.ModuleList(
            Block(c.dim, c.heads, c.ff_mult) for _ in range(c.marginal_depth))

        self.fusion = Block(c.dim, c.heads, c.ff_mult, cross=True)
        num_params = num_critic_params(c)
        self.head = nn.Sequential(nn.LayerNorm(c.dim), nn.Linear(c.dim, c.head_hidden), nn.GELU(),
                                  nn.Linear(c.head_hidden, c.head_hidden), nn.GELU(),
                                  nn.Linear(c.head_hidden, num_params))
        # theta = theta_0 + head(h): a well-initialised critic that the head only adjusts
        self.theta0 = nn.Parameter(critic_init(c))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def _latents(self, p: torch.Tensor, batch: int) -> torch.Tensor:
        return p.unsqueeze(0).expand(batch, -1, -1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        joint = self.joint_in(torch.cat([x, y], dim=-1))  # (B, n, D)
        zj = self.joint_cross(self._latents(self.joint_latents, b), joint)  # (B, L, D)
        for blk in self.joint_self:
            zj = blk(zj)

        hx, hy = self.x_in(x), self.y_in(y)  # (B, n, D) each
        sx = self.x_summary(self._latents(self.x_latents, b), hx)
        sy = self.y_summary(self._latents(self.y_latents, b), hy)
        zm = self.x_to_y(sx, hy) + self.y_to_x(sy, hx)  # bidirectional, summed
        for blk in self.marginal_self:
            zm = blk(zm)

        fused = self.fusion(zj, zm)  # joint queries, marginal keys/values
        pooled = reduce(fused, "b l d -> b d", "mean")
        return self.theta0 + self.head(pooled)
