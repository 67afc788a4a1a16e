"Library-level checks of i2vgan.networks (the notebook holds the full tests)."
import pytest, torch
from i2vgan.networks import (ResnetGenerator, UnetPredictor, PatchDiscriminator, PatchSampleMLP,
                             layer_table, default_device, init_weights)

def _m(net): return round(sum(p.numel() for p in net.parameters()) / 1e6, 3)

def test_parameter_counts():
    with torch.device('meta'):
        assert _m(ResnetGenerator(n_blocks=6)) == 7.838 and _m(ResnetGenerator(n_blocks=9)) == 11.378
        assert _m(UnetPredictor(num_downs=7)) == 41.829 and _m(UnetPredictor(num_downs=8)) == 54.413
        assert _m(PatchDiscriminator()) == 2.765

def test_bad_input():
    with pytest.raises(ValueError, match='divisible by 2\\*\\*5=32, got 40×32'):
        UnetPredictor(ngf=4, num_downs=5)(torch.zeros(1, 6, 40, 32))
    with pytest.raises(ValueError, match='out of range'):
        ResnetGenerator(ngf=4, n_blocks=1).encode(torch.zeros(1, 3, 16, 16), (0, 40))

def test_tiny_forward_and_mlp():
    torch.manual_seed(0)
    G = ResnetGenerator(ngf=4, n_blocks=1)
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    assert G(x).shape == x.shape and G(x).abs().max() <= 1
    H = PatchSampleMLP(G.encoder_channels((0, 4)), n_units=16)
    q, ids = H(G.encode(x, (0, 4)), num_patches=8)
    k, _ = H(G.encode(x, (0, 4)), patch_ids=ids)
    assert all(torch.allclose(a, b) for a, b in zip(q, k))
    assert torch.allclose(q[1].norm(dim=-1), torch.ones(1, 8))

def test_layer_table_gflop():
    with torch.device('meta'): G, G_tr = ResnetGenerator(), ResnetGenerator(upsample='transposed')
    assert round(sum(r['gflop'] for r in layer_table(G, (1, 3, 256, 256))), 2) == 84.71      # official, anti-aliased
    assert round(sum(r['gflop'] for r in layer_table(G_tr, (1, 3, 256, 256))), 2) == 70.11   # transposed convs
