"""The official I2V-GAN release: key → shape tables written from the official code's layer recipe (not by saving
our own networks), a generator rebuilt from that recipe giving the same forward pass as ours, mock release folders
that load, translate and fail clearly, and the IRVI release tree through the command line."""
import math
import numpy as np, pytest, torch, torch.nn as nn, torch.nn.functional as F
from pathlib import Path
from i2vgan.core import I2VGAN, I2VGANConfig, OFFICIAL_NAMES
from i2vgan.networks import ResnetGenerator, UnetPredictor, PatchDiscriminator
from i2vgan.cli import main


# ---- the official code's recipes, as shape tables -------------------------------------------------------------
def resnet_recipe(ngf=64, n_blocks=6, in_nc=3, out_nc=3):
    """CUT's ResnetGenerator with no_antialias=True, no_antialias_up=False, norm=instance (use_bias=True), no dropout:
    [pad, conv7, IN, ReLU] + 2×[conv3 s2, IN, ReLU] + n×ResnetBlock + 2×[Upsample, conv3, IN, ReLU] + [pad, conv7, Tanh]."""
    shapes, i = {}, 0
    def conv(cin, cout, k):
        nonlocal i
        shapes[f"model.{i}.weight"], shapes[f"model.{i}.bias"] = (cout, cin, k, k), (cout,)
    i = 1; conv(in_nc, ngf, 7); i = 4                    # 0 pad, 1 conv, 2 IN, 3 ReLU
    for m in (1, 2):                                      # 4 conv, 5 IN, 6 ReLU | 7 conv, 8 IN, 9 ReLU
        conv(ngf * m, ngf * m * 2, 3); i += 3
    for _ in range(n_blocks):                             # conv_block: pad, conv, IN, ReLU, pad, conv, IN
        for j in (1, 5): shapes[f"model.{i}.conv_block.{j}.weight"], shapes[f"model.{i}.conv_block.{j}.bias"] = (4 * ngf, 4 * ngf, 3, 3), (4 * ngf,)
        i += 1
    for m in (4, 2):                                      # Upsample (buffer filt, C×1×4×4), conv, IN, ReLU
        shapes[f"model.{i}.filt"] = (ngf * m, 1, 4, 4); i += 1
        conv(ngf * m, ngf * m // 2, 3); i += 3
    i += 1; conv(ngf, out_nc, 7)                          # pad, conv, Tanh
    return shapes

def unet_recipe(num_downs, ngf=64, in_nc=6, out_nc=3):
    "CycleGAN's UnetGenerator (instance norm: convs with bias), keys from its nested UnetSkipConnectionBlocks."
    # levels from outermost to innermost: (outer_nc, inner_nc, input_nc)
    levels = [(out_nc, ngf, in_nc), (ngf, 2 * ngf, ngf), (2 * ngf, 4 * ngf, 2 * ngf), (4 * ngf, 8 * ngf, 4 * ngf)]
    levels += [(8 * ngf, 8 * ngf, 8 * ngf)] * (num_downs - 4)
    shapes, prefix = {}, "model.model"
    for d, (outer, inner, inp) in enumerate(levels):
        outermost, innermost = d == 0, d == len(levels) - 1
        down, up = (0, 3) if outermost else (1, 3) if innermost else (1, 5)
        up_in = inner if innermost else 2 * inner
        shapes[f"{prefix}.{down}.weight"], shapes[f"{prefix}.{down}.bias"] = (inner, inp, 4, 4), (inner,)
        shapes[f"{prefix}.{up}.weight"], shapes[f"{prefix}.{up}.bias"] = (up_in, outer, 4, 4), (outer,)
        prefix += ".1.model" if outermost else ".3.model"
    return shapes

def basic_d_recipe(ndf=64, in_nc=3):
    "NLayerDiscriminator(n_layers=3), instance norm: conv(s2), LReLU, 2×[conv(s2), IN, LReLU], conv(s1), IN, LReLU, conv(s1)."
    chans = [(in_nc, ndf), (ndf, 2 * ndf), (2 * ndf, 4 * ndf), (4 * ndf, 8 * ndf), (8 * ndf, 1)]
    return {**{f"model.{i}.weight": (o, c, 4, 4) for i, (c, o) in zip((0, 2, 5, 8, 11), chans)},
            **{f"model.{i}.bias": (o,) for i, (c, o) in zip((0, 2, 5, 8, 11), chans)}}

def shapes_of(net): return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def test_recipe_spot_checks():
    "A few entries written out literally, so the recipe functions themselves are pinned down."
    r = resnet_recipe()
    assert r["model.16.filt"] == (256, 1, 4, 4) and r["model.17.weight"] == (128, 256, 3, 3)
    assert r["model.20.filt"] == (128, 1, 4, 4) and r["model.21.weight"] == (64, 128, 3, 3) and r["model.25.weight"] == (3, 64, 7, 7)
    assert resnet_recipe(n_blocks=9)["model.28.weight"] == (3, 64, 7, 7)
    assert unet_recipe(7)["model.model.0.weight"] == (64, 6, 4, 4) and unet_recipe(7)["model.model.3.weight"] == (128, 3, 4, 4)

@pytest.mark.parametrize("n_blocks", [6, 9])
def test_generator_matches_official_recipe(n_blocks):
    with torch.device("meta"): G = ResnetGenerator(3, 3, 64, n_blocks)
    assert shapes_of(G) == resnet_recipe(64, n_blocks)
    assert sum(math.prod(s) for k, s in resnet_recipe(64, n_blocks).items() if not k.endswith("filt")) == sum(p.numel() for p in G.parameters())

@pytest.mark.parametrize("num_downs", [7, 8])
def test_unet_matches_official_recipe(num_downs):
    with torch.device("meta"): P = UnetPredictor(2, 3, 64, num_downs)
    assert shapes_of(P) == unet_recipe(num_downs)

def test_discriminator_matches_official_recipe():
    with torch.device("meta"): D = PatchDiscriminator(3, 64, 3)
    assert shapes_of(D) == basic_d_recipe()


# ---- the official generator rebuilt from its recipe, forward pass compared -----------------------------------
class RecipeUpsample(nn.Module):
    "CUT's Upsample: ReplicationPad2d(1), conv_transpose2d(stride 2, padding 1+1, groups=C) with [1,3,3,1]ᵀ[1,3,3,1]/64·4, crop [1:, 1:] and [:-1, :-1]."
    def __init__(self, c):
        super().__init__()
        a = torch.tensor([1., 3., 3., 1.]); f = a[:, None] * a[None, :]
        self.register_buffer("filt", (f / f.sum() * 4)[None, None].repeat(c, 1, 1, 1))
        self.pad = nn.ReplicationPad2d(1)
    def forward(self, x):
        y = F.conv_transpose2d(self.pad(x), self.filt, stride=2, padding=2, groups=x.shape[1])[:, :, 1:, 1:]
        return y[:, :, :-1, :-1]

class RecipeBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv_block = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), nn.InstanceNorm2d(c), nn.ReLU(True),
                                        nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), nn.InstanceNorm2d(c))
    def forward(self, x): return x + self.conv_block(x)

def recipe_generator(ngf, n_blocks):
    m = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(True)]
    for k in (1, 2): m += [nn.Conv2d(ngf * k, ngf * k * 2, 3, stride=2, padding=1), nn.InstanceNorm2d(ngf * k * 2), nn.ReLU(True)]
    m += [RecipeBlock(4 * ngf) for _ in range(n_blocks)]
    for k in (4, 2): m += [RecipeUpsample(ngf * k), nn.Conv2d(ngf * k, ngf * k // 2, 3, padding=1), nn.InstanceNorm2d(ngf * k // 2), nn.ReLU(True)]
    m += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
    net = nn.Module(); net.model = nn.Sequential(*m)
    return net

def test_G_Y_forward_equals_rebuilt_official_generator():
    torch.manual_seed(0)
    model = I2VGAN(I2VGANConfig.preset("i2vgan-official", "tiny", ngf=16, n_blocks=6, vgg_weights="random", use_perceptual=False))
    official = recipe_generator(16, 6)
    official.load_state_dict(model.G_Y.state_dict(), strict=True)            # same names, same shapes
    x = torch.rand(2, 3, 64, 48) * 2 - 1
    with torch.no_grad(): assert torch.allclose(model.G_Y(x), official.model(x), atol=1e-5, rtol=0)
    # and the PatchNCE tap 16 is the official Upsample's output, 4·ngf channels at H/2
    with torch.no_grad(): tap = model.G_Y.encode(x, (16,))[0]; ref = official.model[:17](x)
    assert tap.shape == (2, 64, 32, 24) and torch.allclose(tap, ref, atol=1e-5, rtol=0)


# ---- mock releases ---------------------------------------------------------------------------------------------
def write_release(folder, ngf=8, n_blocks=6, npf=8, num_downs=5, ndf=8, units=16, which="latest", fill=True):
    "Random tensors under the official names and shapes of the recipes; each file's tensors carry its own offset."
    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    nce_ch = [3, 2 * ngf, 4 * ngf, 4 * ngf, 4 * ngf]   # taps 0, 4, 8, 12 (a block), 16 (the first Upsample) at 6 blocks
    tables = {"G_A": resnet_recipe(ngf, n_blocks), "G_B": resnet_recipe(ngf, n_blocks),
              "P_A": unet_recipe(num_downs, npf), "P_B": unet_recipe(num_downs, npf),
              "D_A": basic_d_recipe(ndf), "D_B": basic_d_recipe(ndf),
              **{f"F_{d}": {**{f"mlp_{i}.0.weight": (units, c) for i, c in enumerate(nce_ch)}, **{f"mlp_{i}.0.bias": (units,) for i in range(5)},
                            **{f"mlp_{i}.2.weight": (units, units) for i in range(5)}, **{f"mlp_{i}.2.bias": (units,) for i in range(5)}} for d in "AB"}}
    offsets = {name: 10.0 * (k + 1) for k, name in enumerate(tables)}
    for name, table in tables.items():
        sd = {}
        for key, shape in table.items():
            if key.endswith("filt"):
                a = torch.tensor([1., 3., 3., 1.]); f = a[:, None] * a[None]; sd[key] = (f / f.sum() * 4)[None, None].repeat(shape[0], 1, 1, 1)
            else: sd[key] = torch.randn(shape, generator=g) * 0.02 + (offsets[name] if fill else 0)
        torch.save(sd, folder / f"{which}_net_{name}.pth")
    return offsets

def test_mock_release_loads_each_file_into_its_network(tmp_path):
    offsets = write_release(tmp_path / "rel")
    m = I2VGAN.load_official(tmp_path / "rel", check_direction=False)
    c = m.config
    assert (c.ngf, c.n_blocks, c.npf, c.unet_downs, c.ndf, c.n_layers_d, c.mlp_units, c.upsample) == (8, 6, 8, 5, 8, 3, 16, "antialiased")
    for theirs, ours in OFFICIAL_NAMES.items():
        for k, v in getattr(m, ours).named_parameters():
            assert abs(v.mean().item() - offsets[theirs]) < 1, f"{ours}.{k} did not come from {theirs}"
    assert m.loaded_official == [f"{t}→{o}" for t, o in OFFICIAL_NAMES.items()]

def test_mock_release_errors_name_the_file(tmp_path):
    write_release(tmp_path / "rel", fill=False)
    sd = torch.load(tmp_path / "rel/latest_net_P_B.pth"); sd["model.model.0.weight"] = torch.zeros(8, 3, 4, 4)
    torch.save(sd, tmp_path / "rel/latest_net_P_B.pth")
    with pytest.raises(ValueError, match=r"latest_net_P_B.pth: model.model.0.weight has shape \[8, 3, 4, 4\], expected \[8, 6, 4, 4\]"):
        I2VGAN.load_official(tmp_path / "rel")
    (tmp_path / "rel/latest_net_G_B.pth").unlink()
    with pytest.raises(FileNotFoundError, match=r"latest_net_G_B.pth: missing; expected the infrared → visible generator"):
        I2VGAN.load_official(tmp_path / "rel")

def test_cli_translates_with_official_release(tmp_path):
    from i2vgan.data import write_video, read_frames
    write_release(tmp_path / "rel", fill=False)
    rng = np.random.default_rng(0)
    write_video(rng.integers(0, 255, (5, 32, 32, 3), dtype=np.uint8), tmp_path / "clip.mp4", fps=4)
    main(["translate", "--official", str(tmp_path / "rel"), "--input", str(tmp_path / "clip.mp4"), "--output", str(tmp_path / "out.mp4"),
          "--device", "cpu", "--fuse"])
    assert len(read_frames(tmp_path / "out.mp4")) == 5


# ---- the IRVI release tree through the command line -------------------------------------------------------------
def test_mock_irvi_tree_trains_and_evaluates(tmp_path, capsys):
    from i2vgan.data import write_strips, write_frames
    rng = np.random.default_rng(0)
    root = tmp_path / "IRVI"
    for scene in ("traffic", "monitoring"):
        for d in "AB": write_strips(rng.integers(0, 255, (6, 32, 32, 3), dtype=np.uint8), root / "triplet" / scene / f"train{d}")
        clip = rng.integers(0, 255, (4, 32, 32, 3), dtype=np.uint8)
        write_frames(clip, root / "single" / scene / "testA" / "c1"); write_frames(255 - clip, root / "single" / scene / "testB" / "c1")
    over = ["--set", "vgg_weights=random", "--set", "ngf=8", "--set", "npf=8", "--set", "ndf=8", "--set", "n_blocks=2",
            "--set", "num_patches=16", "--set", "mlp_units=16"]
    main(["train", "--data", str(root), "--scene", "traffic", "--steps", "2", "--out", str(tmp_path / "run"), "--device", "cpu",
          "--ckpt-every", "2", "--sample-every", "0", *over])
    ckpt = sorted((tmp_path / "run" / "checkpoints").glob("step_*.pt"))[-1]
    main(["evaluate", "--checkpoint", str(ckpt), "--data", str(root), "--scene", "traffic", "--device", "cpu"])
    out = capsys.readouterr().out
    assert "c1" in out and "tOF" in out and "mIoU" not in out        # no label maps: no semantic columns


# ---- the official training step, exactly ----------------------------------------------------------------------
def official_encode(net, x, layers):
    "CUT's `ResnetGenerator.forward(x, layers, encode_only=True)`: keep the tensor after each listed index, stop after the last."
    feats, f = [], x
    for i, layer in enumerate(net.model):
        f = layer(f)
        if i in layers: feats.append(f)
        if i == layers[-1]: return feats

@pytest.mark.parametrize("layers", [(0, 4, 8, 12, 16), (0, 4, 8)])
def test_official_taps_are_what_in_place_relus_leave(layers):
    "The recipe generator's ReLUs are in-place, as CycleGAN's: its stored layer-8 tensor is rewritten by the ReLU at 9."
    torch.manual_seed(0)
    cfg = lambda name: I2VGANConfig.preset(name, "tiny", ngf=8, n_blocks=6, nce_layers=layers, vgg_weights="random", use_perceptual=False)
    official, paper = I2VGAN(cfg("i2vgan-official")), I2VGAN(cfg("i2vgan"))
    assert official.config.nce_after_relu and not paper.config.nce_after_relu
    theirs_net = recipe_generator(8, 6); theirs_net.load_state_dict(official.G_Y.state_dict(), strict=True)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        theirs = official_encode(theirs_net, x, list(layers))
        ours, plain = official.G_Y.encode(x, official.nce_taps), paper.G_Y.encode(x, paper.nce_taps)
    for l, t, o, p in zip(layers, theirs, ours, plain):
        assert torch.allclose(t, o, atol=1e-5, rtol=0), l
        post_relu = l == 8 and len(layers) == 5            # the deepest tap is read before its ReLU runs
        assert torch.allclose(t, p, atol=1e-5, rtol=0) != post_relu, l
        if post_relu: assert (o >= 0).all() and (p < 0).any()

def test_fast_step_reads_the_official_taps():
    "The fast trainer encodes the same taps as the reference step (the official preset with the paper's five layers)."
    from i2vgan.fast import compare_steps, worst, tiny_config, random_batch
    m = I2VGAN(tiny_config("i2vgan-official", n_blocks=6, nce_layers=(0, 4, 8, 12, 16)))
    assert m.nce_taps == (0, 4, 9, 12, 16)
    assert worst(compare_steps(m, random_batch(m.config, B=1))) < 1e-4

def test_official_schedule_is_the_official_per_epoch_rule():
    """LambdaLR stepped once per epoch with the official lambda_rule (epoch_count 1, niter = niter_decay = 35) against
    our trainer's scheduler stepped once per step."""
    from i2vgan.core import official_schedule
    from i2vgan.train import linear_decay
    n_items = 3
    rule = lambda epoch: 1.0 - max(0, epoch + 1 + 1 - 35) / float(35 + 1)
    opt = lambda: torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=2e-4)
    theirs_opt = opt(); theirs = torch.optim.lr_scheduler.LambdaLR(theirs_opt, rule)
    s = official_schedule(n_items)
    ours_opt = opt(); ours = torch.optim.lr_scheduler.LambdaLR(ours_opt, linear_decay(s["n_steps"], s["n_steps_decay"], s["epoch_steps"]))
    lr_theirs, lr_ours = [], []
    for epoch in range(1, 35 + 35 + 1):                   # the official loop: for epoch in range(epoch_count, niter + niter_decay + 1)
        for _ in range(n_items):
            lr_theirs.append(theirs_opt.param_groups[0]["lr"]); theirs_opt.step()
            lr_ours.append(ours_opt.param_groups[0]["lr"]); ours_opt.step(); ours.step()
        theirs.step()                                     # model.update_learning_rate() at the end of the epoch
    assert len(lr_ours) == s["n_steps"] + s["n_steps_decay"] == 70 * n_items
    assert np.allclose(lr_ours, lr_theirs, rtol=0, atol=1e-15)
    epochs = np.array(lr_theirs)[::n_items]
    assert (epochs == 2e-4).sum() == 34 and epochs[-1] == 0 and np.isclose(epochs[34], 2e-4 * 35 / 36)

def test_exs_weight_for_eq12_sum():
    "Eq. (12) sums PatchNCE over L layers and S patches; the code averages over both, so λ4 on the sum is λ4·L·S on ours."
    from i2vgan.losses import external_similarity_loss, patch_nce_loss
    from i2vgan.networks import PatchSampleMLP
    torch.manual_seed(0)
    G = ResnetGenerator(3, 3, 8, 6); layers, S = (0, 4, 8, 12, 16), 256
    H = PatchSampleMLP(G.encoder_channels(layers), n_units=16)
    src, fake = torch.rand(1, 3, 64, 64) * 2 - 1, torch.rand(1, 3, 64, 64) * 2 - 1
    torch.manual_seed(1); ours = external_similarity_loss(G.encode, H, src, fake, layers, S)
    torch.manual_seed(1)
    feats = G.encode(torch.cat([src, fake]), layers)
    k, ids = H([f[:1] for f in feats], S, None); q, _ = H([f[1:] for f in feats], S, ids)
    eq12 = sum(patch_nce_loss(qq, kk, reduction="none").sum() for qq, kk in zip(q, k))    # Σ_l Σ_s
    assert torch.allclose(0.1 * eq12, (0.1 * len(layers) * S) * ours, rtol=1e-5)
    assert 0.1 * len(layers) * S == 128
