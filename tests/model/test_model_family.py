"""Every paper variant builds from its name, runs at 384x128, trains, and is batch independent."""

from __future__ import annotations

import pytest
import torch

from adfl_deploy.errors import ConfigError
from adfl_deploy.model.variants import PAPER_MODEL_NAMES
from adfl_deploy.train.models import create_model, list_models

H, W = 384, 128

# Embedding sizes worked out from the paper (Sec. V-C: 1024-dim features; Sec. III-C: AF fusion
# before the final BN): cat adds the AF dim to the 1024 backbone feature, sum keeps the AF dim.
EXPECTED_DIM = {"baseline": 1024, "cat-512": 1536, "cat-1024": 2048, "sum-1024": 1024, "sum-2048": 2048}


def expected_dim(name: str) -> int:
    if name.startswith("AF"):
        return EXPECTED_DIM["-".join(name.split("-")[1:3])]
    return EXPECTED_DIM["baseline"]


def _set_alphas(model: torch.nn.Module, value: float) -> None:
    """Type I modules start at alpha = 0 (identity); a non-zero alpha exercises them."""
    for name, p in model.named_parameters():
        if name.endswith("alpha"):
            p.data.fill_(value)


def test_the_paper_tables_name_41_variants():
    assert len(list_models()) == 1 + 2 * 7 + 2 * 7 + 12
    assert list_models() == PAPER_MODEL_NAMES


@pytest.mark.parametrize("name", PAPER_MODEL_NAMES)
def test_every_variant_builds_runs_and_trains(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=7)
    _set_alphas(model, 0.5)
    x = torch.randn(2, 3, H, W)

    model.eval()
    with torch.no_grad():
        emb = model(x)
    assert emb.shape == (2, expected_dim(name)) == (2, model.embedding_dim)
    assert torch.isfinite(emb).all()

    model.train()
    outputs = model.forward_train(x)
    assert len(outputs) == (2 if name.startswith("AF") else 1)
    loss = sum(o.logits.square().mean() + o.pre_bn.square().mean() for o in outputs)
    loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert not no_grad, f"parameters not reached by backward: {no_grad[:5]}"


@pytest.mark.parametrize("name", [n for n in PAPER_MODEL_NAMES if "1b" not in n])
def test_eval_embedding_does_not_depend_on_the_batch(name):
    torch.manual_seed(1)
    model = create_model(name, num_classes=7).eval()
    _set_alphas(model, 0.5)
    x = torch.randn(3, 3, H, W)
    with torch.no_grad():
        together = model(x)
        alone = torch.cat([model(x[i : i + 1]) for i in range(3)])
    # float32 kernels differ slightly by batch size; a real batch dependence is O(scale)
    scale = alone.abs().max()
    torch.testing.assert_close(together, alone, rtol=0, atol=1e-3 * float(scale))


@pytest.mark.parametrize("name", ["attn2-1b", "attn3-1b"])
def test_batch_attention_inference_modes(name):
    """``batch`` (the paper): a batch of one equals ``self`` mode; ``self`` is batch independent."""
    torch.manual_seed(2)
    paper = create_model(name, num_classes=7).eval()
    _set_alphas(paper, 0.5)
    selfish = create_model(name, num_classes=7, batch_attention="self").eval()
    selfish.load_state_dict(paper.state_dict())
    x = torch.randn(3, 3, H, W)
    with torch.no_grad():
        alone = torch.cat([paper(x[i : i + 1]) for i in range(3)])
        tol = dict(rtol=0, atol=1e-3 * float(alone.abs().max()))
        torch.testing.assert_close(selfish(x), alone, **tol)
        torch.testing.assert_close(torch.cat([selfish(x[i : i + 1]) for i in range(3)]), alone, **tol)


def test_stage4_keeps_stride_one():
    """Sec. III-A 1: no down-sampling in stage4, so stage3 and stage4 maps are both H/16 x W/16."""
    model = create_model("baseline").eval()
    sizes = []
    hooks = [stage.register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[2:]))) for stage in model.stages]
    with torch.no_grad():
        model(torch.zeros(1, 3, H, W))
    for h in hooks:
        h.remove()
    assert sizes == [(96, 32), (48, 16), (24, 8), (24, 8)]


def test_global_max_pooling_and_fc_bottleneck():
    """The backbone feature is max (not mean) over positions, then FC 2048 -> 1024."""
    model = create_model("baseline").eval()
    captured = {}
    model.stages[3].register_forward_hook(lambda m, i, o: captured.update(map=o))
    model.bottleneck.register_forward_hook(lambda m, i, o: captured.update(pooled=i[0]))
    with torch.no_grad():
        model(torch.randn(1, 3, H, W))
    torch.testing.assert_close(captured["pooled"], captured["map"].amax(dim=(2, 3)))
    assert (model.bottleneck.in_features, model.bottleneck.out_features) == (2048, 1024)


@pytest.mark.parametrize("backbone,dim", [("resnet18", 512), ("resnet34", 512), ("resnet101", 1024)])
def test_edge_and_large_backbones(backbone, dim):
    model = create_model(f"attn3-1sum@{backbone}").eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 256, 128)).shape == (1, dim)


def test_af_fused_embedding_is_the_second_bn_output():
    """Sec. V-B: AF variants use the BN output of the fused (skip-connection) feature."""
    model = create_model("AF3-cat-512-attn3-1sum").eval()
    x = torch.randn(2, 3, H, W)
    with torch.no_grad():
        backbone, fused = model.forward_features(x)
        torch.testing.assert_close(model(x), model.fused_head.bn(fused))
    assert fused.shape == (2, 1024 + 512)


def test_pretrained_backbone_comes_from_a_local_file(tmp_path, monkeypatch):
    import torchvision

    def no_download(*args, **kwargs):
        raise AssertionError("tried to download weights")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    source = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18_imagenet.pth"
    torch.save(source.state_dict(), path)
    model = create_model("baseline@resnet18", pretrained=path)
    torch.testing.assert_close(model.stem[0].weight, source.conv1.weight)
    torch.testing.assert_close(model.stages[3][1].conv2.weight, source.layer4[1].conv2.weight)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", None])
def test_bad_pretrained_file_fails_in_one_line(tmp_path, content):
    path = tmp_path / "weights.pth"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError) as err:
        create_model("baseline@resnet18", pretrained=path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_pretrained_for_another_backbone_is_rejected(tmp_path):
    import torchvision

    path = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    with pytest.raises(ConfigError, match="does not match"):
        create_model("baseline@resnet50", pretrained=path)


def test_missing_pretrained_warns_once_per_model():
    with pytest.warns(UserWarning, match="random weights"):
        create_model("baseline@resnet18")


def test_ibn_halves_are_instance_and_batch_normalised_as_in_ibn_net():
    """IBN-a against a float64 reference of its definition: the first half of the channels is
    normalised over each image's own positions (then its affine), the rest by batch norm."""
    from adfl_deploy.train.models.backbone import IBN

    torch.manual_seed(0)
    ibn = IBN(8).double()
    with torch.no_grad():
        ibn.instance.weight.uniform_(0.5, 2.0)
        ibn.instance.bias.uniform_(-1.0, 1.0)
        ibn.batch.running_mean.uniform_(-1.0, 1.0)
        ibn.batch.running_var.uniform_(0.5, 2.0)
    ibn.eval()
    x = torch.randn(3, 8, 5, 4, dtype=torch.float64) * 3 + 1
    got = ibn(x)
    head = x[:, :4]
    mean, var = head.mean(dim=(2, 3), keepdim=True), head.var(dim=(2, 3), unbiased=False, keepdim=True)
    want_in = (head - mean) / torch.sqrt(var + 1e-5) * ibn.instance.weight.view(1, -1, 1, 1) + ibn.instance.bias.view(1, -1, 1, 1)
    bn = ibn.batch
    want_bn = (x[:, 4:] - bn.running_mean.view(1, -1, 1, 1)) / torch.sqrt(bn.running_var.view(1, -1, 1, 1) + bn.eps)
    want_bn = want_bn * bn.weight.view(1, -1, 1, 1) + bn.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(got, torch.cat([want_in, want_bn], dim=1))
    # what it is for: a per-image gain and offset on a channel (a colour cast) leaves the
    # instance-normalised half unchanged
    cast = x * torch.tensor([2.0, 0.5, 1.5, 3.0, 1, 1, 1, 1], dtype=torch.float64).view(1, -1, 1, 1) + 0.7
    torch.testing.assert_close(ibn(cast)[:, :4], got[:, :4], atol=1e-5, rtol=1e-5)


def test_ibn_backbone_from_its_name():
    """``@resnet18-ibn``: stages 1-3 start every block with IBN, stage 4 keeps batch norm, and
    the embedding does not depend on the other images of the batch."""
    from adfl_deploy.train.models.backbone import IBN

    model = create_model("AF3-cat-256-attn3-1sum@resnet18-ibn", num_classes=5).eval()
    assert model.cfg.ibn and model.cfg.name == "AF3-cat-256-attn3-1sum@resnet18-ibn"
    assert all(isinstance(block.bn1, IBN) for stage in model.stages[:3] for block in stage)
    assert not any(isinstance(m, IBN) for m in model.stages[3].modules())
    x = torch.randn(3, 3, 128, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x)[:1], model(x[:1]), atol=1e-5, rtol=1e-4)


def test_ibn_backbone_refuses_torchvision_imagenet_weights(tmp_path):
    import torchvision

    path = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    with pytest.raises(ConfigError, match="from scratch"):
        create_model("baseline@resnet18-ibn", pretrained=path)
