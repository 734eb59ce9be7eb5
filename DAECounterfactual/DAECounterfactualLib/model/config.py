"""Architecture config of a diffusion autoencoder: one frozen dataclass, validated on creation.

The same config is written into a bundle's ``config.json`` and read back, so a model can only be rebuilt
with exactly the architecture it was trained with.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


class ConfigError(ValueError):
    """A config that cannot describe a working network."""


@dataclass(frozen=True)
class DAEConfig:
    image_size: int = 64
    in_channels: int = 1
    base_channels: int = 32
    channel_mults: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    attention_resolutions: tuple[int, ...] = (16,)
    z_dim: int = 512
    encoder_channel_mults: tuple[int, ...] = (1, 2, 4, 4)
    head_channels: int = 32
    groups: int = 8
    dropout: float = 0.0

    def __post_init__(self) -> None:
        # Tuples survive JSON round trips as lists; normalise before validating.
        for name in ("channel_mults", "attention_resolutions", "encoder_channel_mults"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        self._validate()

    @property
    def level_resolutions(self) -> tuple[int, ...]:
        """Feature-map side length at each UNet level, e.g. (96, 48, 24, 12)."""
        return tuple(self.image_size // 2**i for i in range(len(self.channel_mults)))

    @property
    def time_embed_dim(self) -> int:
        return 4 * self.base_channels

    def _validate(self) -> None:
        positive = ("image_size", "in_channels", "base_channels", "num_res_blocks", "z_dim", "head_channels", "groups")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("channel_mults", "encoder_channel_mults"):
            mults = getattr(self, name)
            if not mults or min(mults) < 1:
                raise ConfigError(f"{name} must be a non-empty tuple of positive integers, got {mults}")
        depth = max(len(self.channel_mults), len(self.encoder_channel_mults)) - 1
        if self.image_size % 2**depth:
            raise ConfigError(
                f"image_size {self.image_size} is not divisible by 2**{depth} (needed for {depth} downsamplings)"
            )
        unknown = sorted(set(self.attention_resolutions) - set(self.level_resolutions))
        if unknown:
            raise ConfigError(
                f"attention_resolutions {unknown} match no UNet level; levels at image_size {self.image_size} "
                f"are {list(self.level_resolutions)}"
            )
        for mult in set(self.channel_mults) | set(self.encoder_channel_mults):
            width = self.base_channels * mult
            if width % self.groups:
                raise ConfigError(f"channel width {width} is not divisible by groups={self.groups}")
        for res in self.attention_resolutions:
            width = self.base_channels * self.channel_mults[self.level_resolutions.index(res)]
            if width % self.head_channels:
                raise ConfigError(f"attention width {width} at {res}px is not divisible by head_channels")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DAEConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown model config keys: {unknown}")
        return cls(**data)
