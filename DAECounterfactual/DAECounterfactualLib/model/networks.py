"""Semantic encoder and conditional noise-prediction UNet of a diffusion autoencoder (Preechakul et al. 2022).

The UNet predicts eps(x_t, t, z_sem). As in diffae, every residual block normalises its features and modulates
them twice: by the timestep embedding (scale and shift) and by the semantic code (scale), so z_sem steers the
whole decoder. The networks know nothing about noise schedules; ``diffusion.py`` does.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import DAEConfig


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps, shape (N,) -> (N, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return F.pad(emb, (0, dim % 2))


def zero_init(module: nn.Module) -> nn.Module:
    """Start residual branches at zero so a fresh network is the identity on its skip path."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResBlock(nn.Module):
    """GroupNorm residual block; optional time (scale, shift) and semantic (scale) modulation."""

    def __init__(self, in_ch: int, out_ch: int, groups: int, time_dim: int | None = None,
                 z_dim: int | None = None, dropout: float = 0.0):
        super().__init__()
        self.in_layers = nn.Sequential(nn.GroupNorm(groups, in_ch), nn.SiLU(), nn.Conv2d(in_ch, out_ch, 3, padding=1))
        self.time_proj = nn.Sequential(nn.SiLU(), nn.Linear(time_dim, 2 * out_ch)) if time_dim else None
        self.z_proj = nn.Sequential(nn.SiLU(), nn.Linear(z_dim, out_ch)) if z_dim else None
        self.out_norm = nn.GroupNorm(groups, out_ch)
        self.out_layers = nn.Sequential(nn.SiLU(), nn.Dropout(dropout),
                                        zero_init(nn.Conv2d(out_ch, out_ch, 3, padding=1)))
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, t_emb: torch.Tensor | None = None, z: torch.Tensor | None = None):
        h = self.out_norm(self.in_layers(x))
        if self.time_proj is not None:
            scale, shift = self.time_proj(t_emb)[..., None, None].chunk(2, dim=1)
            h = h * (1 + scale) + shift
        if self.z_proj is not None:
            h = h * (1 + self.z_proj(z)[..., None, None])
        return self.skip(x) + self.out_layers(h)


class SelfAttention(nn.Module):
    """Multi-head self-attention over all pixels of a feature map, residual."""

    def __init__(self, ch: int, head_channels: int, groups: int):
        super().__init__()
        self.heads = ch // head_channels
        self.norm = nn.GroupNorm(groups, ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = zero_init(nn.Conv2d(ch, ch, 1))

    def forward(self, x: torch.Tensor, *_unused) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, self.heads, c // self.heads, h * w).unbind(1)
        out = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.proj(out.transpose(-1, -2).reshape(n, c, h, w))


class Downsample(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor, *_unused) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor, *_unused) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Identity(nn.Module):
    def forward(self, x: torch.Tensor, *_unused) -> torch.Tensor:
        return x


def _attention_or_identity(config: DAEConfig, resolution: int, ch: int) -> nn.Module:
    if resolution in config.attention_resolutions:
        return SelfAttention(ch, config.head_channels, config.groups)
    return Identity()


class SemanticEncoder(nn.Module):
    """Image -> z_sem: a downsampling ResNet, global average pooling and a linear head."""

    def __init__(self, config: DAEConfig):
        super().__init__()
        c = config
        widths = [c.base_channels * m for m in c.encoder_channel_mults]
        self.stem = nn.Conv2d(c.in_channels, widths[0], 3, padding=1)
        layers: list[nn.Module] = []
        ch = widths[0]
        for level, width in enumerate(widths):
            for _ in range(c.num_res_blocks):
                layers.append(ResBlock(ch, width, c.groups, dropout=c.dropout))
                ch = width
            if level < len(widths) - 1:
                layers.append(Downsample(ch))
        self.layers = nn.ModuleList(layers)
        self.head = nn.Sequential(nn.GroupNorm(c.groups, ch), nn.SiLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(ch, c.z_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        for layer in self.layers:
            h = layer(h)
        return self.head(h)


class ConditionalUNet(nn.Module):
    """eps(x_t, t, z_sem): UNet with time and semantic modulation in every residual block."""

    def __init__(self, config: DAEConfig):
        super().__init__()
        c = config
        self.base_channels = c.base_channels
        tdim = c.time_embed_dim
        self.time_mlp = nn.Sequential(nn.Linear(c.base_channels, tdim), nn.SiLU(), nn.Linear(tdim, tdim))

        def res(in_ch: int, out_ch: int) -> ResBlock:
            return ResBlock(in_ch, out_ch, c.groups, time_dim=tdim, z_dim=c.z_dim, dropout=c.dropout)

        widths = [c.base_channels * m for m in c.channel_mults]
        resolutions = c.level_resolutions
        self.stem = nn.Conv2d(c.in_channels, widths[0], 3, padding=1)

        self.down = nn.ModuleList()
        ch = widths[0]
        for level, width in enumerate(widths):
            blocks = nn.ModuleList()
            for _ in range(c.num_res_blocks):
                blocks.append(nn.ModuleList([res(ch, width), _attention_or_identity(c, resolutions[level], width)]))
                ch = width
            last = level == len(widths) - 1
            self.down.append(nn.ModuleList([blocks, Identity() if last else Downsample(ch)]))

        self.mid = nn.ModuleList([res(ch, ch), SelfAttention(ch, c.head_channels, c.groups)
                                  if ch % c.head_channels == 0 else Identity(), res(ch, ch)])

        self.up = nn.ModuleList()
        for level in reversed(range(len(widths))):
            width = widths[level]
            blocks = nn.ModuleList()
            for _ in range(c.num_res_blocks):
                blocks.append(nn.ModuleList([res(ch + width, width),
                                             _attention_or_identity(c, resolutions[level], width)]))
                ch = width
            self.up.append(nn.ModuleList([blocks, Identity() if level == 0 else Upsample(ch)]))

        self.head = nn.Sequential(nn.GroupNorm(c.groups, ch), nn.SiLU(),
                                  zero_init(nn.Conv2d(ch, c.in_channels, 3, padding=1)))

    def forward(self, x: torch.Tensor, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        t = t.expand(x.shape[0]) if t.ndim == 0 else t
        t_emb = self.time_mlp(timestep_embedding(t, self.base_channels))
        h = self.stem(x)
        skips = []
        for blocks, downsample in self.down:
            for block, attn in blocks:
                h = attn(block(h, t_emb, z))
                skips.append(h)
            h = downsample(h)
        first, attn, second = self.mid
        h = second(attn(first(h, t_emb, z)), t_emb, z)
        for blocks, upsample in self.up:
            for block, attn in blocks:
                h = attn(block(torch.cat([h, skips.pop()], dim=1), t_emb, z))
            h = upsample(h)
        return self.head(h)


class DiffusionAutoencoder(nn.Module):
    """Semantic encoder + conditional UNet, trained together with the noise-prediction loss."""

    def __init__(self, config: DAEConfig):
        super().__init__()
        self.config = config
        self.encoder = SemanticEncoder(config)
        self.unet = ConditionalUNet(config)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, z: torch.Tensor | None = None, *,
                x_start: torch.Tensor | None = None) -> torch.Tensor:
        """eps prediction; during training pass ``x_start`` so encoding happens inside forward (needed by DDP)."""
        if z is None:
            if x_start is None:
                raise ValueError("pass either z or x_start")
            z = self.encoder(x_start)
        return self.unet(x_t, t, z)


def make_model(config: DAEConfig) -> DiffusionAutoencoder:
    return DiffusionAutoencoder(config)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
