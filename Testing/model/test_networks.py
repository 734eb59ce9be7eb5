import pytest
import torch

from DAECounterfactualLib.model.config import ConfigError, DAEConfig
from DAECounterfactualLib.model.networks import count_parameters, make_model, timestep_embedding


def test_shapes_of_encoder_and_unet(tiny_config):
    model = make_model(tiny_config).eval()
    x = torch.randn(3, 1, 16, 16)
    z = model.encode(x)
    assert z.shape == (3, tiny_config.z_dim)
    assert model(x, torch.tensor([0.0, 500.0, 999.0]), z).shape == x.shape
    assert model(x, torch.tensor(10.0), z).shape == x.shape  # scalar t is broadcast


def test_rgb_and_96px_configs_build():
    config = DAEConfig(image_size=96, in_channels=3, base_channels=16, channel_mults=(1, 2, 2, 4),
                       attention_resolutions=(12, 24), z_dim=64, head_channels=16)
    model = make_model(config)
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        assert model(x, torch.tensor([3.0]), model.encode(x)).shape == x.shape
    assert config.level_resolutions == (96, 48, 24, 12)


def test_attention_resolution_matching_no_level_is_refused():
    with pytest.raises(ConfigError, match=r"\[16\] match no UNet level.*\[96, 48, 24, 12\]"):
        DAEConfig(image_size=96, channel_mults=(1, 2, 4, 8), attention_resolutions=(16,))


@pytest.mark.parametrize("bad, message", [
    (dict(image_size=60, channel_mults=(1, 2, 4, 8)), "not divisible by 2\\*\\*3"),
    (dict(base_channels=12, groups=8), "not divisible by groups"),
    (dict(channel_mults=()), "non-empty"),
    (dict(z_dim=0), "z_dim must be >= 1"),
    (dict(dropout=1.0), "dropout"),
])
def test_invalid_configs_are_refused(bad, message):
    with pytest.raises(ConfigError, match=message):
        DAEConfig(**bad)


def test_config_round_trips_through_dict(tiny_config):
    assert DAEConfig.from_dict(tiny_config.to_dict()) == tiny_config
    with pytest.raises(ConfigError, match="unknown model config keys"):
        DAEConfig.from_dict({**tiny_config.to_dict(), "depth": 3})


def test_attention_layers_exist_only_at_requested_levels(tiny_config):
    from DAECounterfactualLib.model.networks import SelfAttention

    model = make_model(tiny_config)
    # tiny config: attention at 8 px (level 1) in down and up paths, plus the middle block
    n_attention = sum(isinstance(m, SelfAttention) for m in model.unet.modules())
    assert n_attention == 1 + 1 + 1
    no_attention = make_model(DAEConfig(**{**tiny_config.to_dict(), "attention_resolutions": ()}))
    assert sum(isinstance(m, SelfAttention) for m in no_attention.unet.modules()) == 1


def test_semantic_code_changes_the_prediction(tiny_config):
    """z_sem must steer the decoder: with trained (non-zero) output layers, different z give different eps."""
    torch.manual_seed(0)
    model = make_model(tiny_config).eval()
    for p in model.parameters():
        if p.abs().sum() == 0:
            torch.nn.init.normal_(p, std=0.05)
    x, t = torch.randn(1, 1, 16, 16), torch.tensor([100.0])
    with torch.no_grad():
        a = model(x, t, torch.zeros(1, tiny_config.z_dim))
        b = model(x, t, torch.ones(1, tiny_config.z_dim))
    assert (a - b).abs().max() > 1e-3


def test_timestep_embedding_is_distinct_per_step():
    emb = timestep_embedding(torch.tensor([0.0, 1.0, 999.0]), 33)
    assert emb.shape == (3, 33)
    assert torch.cdist(emb, emb)[0, 1] > 0.1


def test_parameter_count_is_reported(tiny_config):
    model = make_model(tiny_config)
    assert count_parameters(model) == count_parameters(model.encoder) + count_parameters(model.unet)
    assert 50_000 < count_parameters(model) < 1_000_000
