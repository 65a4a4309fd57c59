"""Paper names <-> typed configs, and strict config (de)serialisation. Torch-free."""

from __future__ import annotations

import json

import pytest

from adfl_deploy import config
from adfl_deploy.errors import ConfigError
from adfl_deploy.model.variants import (
    PAPER_MODEL_NAMES,
    AttentionConfig,
    FeatureFusionConfig,
    ModelConfig,
    parse_model_name,
)


def test_delegate_name_parses_into_its_parts():
    cfg = parse_model_name("AF3-cat-1024-attn3-1sum")
    assert cfg == ModelConfig(
        backbone="resnet50",
        attention=AttentionConfig(module="1sum", stage=3),
        features=FeatureFusionConfig(stage=3, fusion="cat", dim=1024),
    )
    assert (cfg.attention.type, cfg.attention.arrangement) == (1, "sum")


@pytest.mark.parametrize(
    "name,backbone,module,stage,af",
    [
        ("baseline", "resnet50", None, None, None),
        ("attn4-2multiply", "resnet50", "2multiply", 4, None),
        ("attn2-1h@resnet18", "resnet18", "1h", 2, None),
        ("AF3-sum-2048-attn3-1cs@resnet101", "resnet101", "1cs", 3, ("sum", 2048)),
        ("AF3-cat-256-attn3-1sum@resnet18-ibn", "resnet18", "1sum", 3, ("cat", 256)),
        ("baseline@resnet50-ibn", "resnet50", None, None, None),
    ],
)
def test_names_parse(name, backbone, module, stage, af):
    cfg = parse_model_name(name)
    assert cfg.backbone == backbone
    assert (cfg.attention.module if cfg.attention else None) == module
    assert (cfg.attention.stage if cfg.attention else None) == stage
    assert ((cfg.features.fusion, cfg.features.dim) if cfg.features else None) == af
    assert cfg.name == name
    assert cfg.ibn == name.endswith("-ibn")


@pytest.mark.parametrize("name", PAPER_MODEL_NAMES)
def test_every_paper_name_round_trips_through_yaml_and_json(name):
    cfg = parse_model_name(name)
    assert cfg.name == name
    assert config.loads(ModelConfig, config.dumps(cfg, "yaml")) == cfg
    assert config.loads(ModelConfig, config.dumps(cfg, "json")) == cfg


@pytest.mark.parametrize(
    "name,why",
    [
        ("resnet50", "does not match"),
        ("attn3-1multiply", "unknown attention module"),
        ("attn5-1s", "stage"),
        ("AF3-cat-1024-attn2-1sum", "same stage"),
        ("AF3-max-1024-attn3-1sum", "fusion"),
        ("AF3-cat-0-attn3-1sum", "positive"),
        ("baseline@vgg16", "unknown backbone"),
        ("AF3-cat-1024-baseline", "same stage"),
    ],
)
def test_bad_names_fail_in_one_line_that_shows_the_grammar(name, why):
    with pytest.raises(ConfigError) as err:
        parse_model_name(name)
    message = str(err.value)
    assert why in message and "Grammar:" in message and "\n" not in message


def test_embedding_dims_follow_the_fusion():
    dims = {n: parse_model_name(n).embedding_dim for n in ("baseline", "AF3-cat-512-attn3-1sc", "AF3-sum-2048-attn3-1sc")}
    assert dims == {"baseline": 1024, "AF3-cat-512-attn3-1sc": 1536, "AF3-sum-2048-attn3-1sc": 2048}
    assert parse_model_name("baseline@resnet18").embedding_dim == 512


def test_config_loading_is_strict(tmp_path):
    good = config.to_dict(parse_model_name("attn3-1sum"))
    with pytest.raises(ConfigError, match="unknown field 'colour'"):
        config.from_dict(ModelConfig, {**good, "colour": "red"})
    with pytest.raises(ConfigError, match="num_classes: expected int"):
        config.from_dict(ModelConfig, {**good, "num_classes": "many"})
    with pytest.raises(ConfigError, match="attention.stage"):
        config.from_dict(ModelConfig, {**good, "attention": {"module": "1s", "stage": 7}})
    with pytest.raises(ConfigError, match="batch_attention"):
        config.from_dict(ModelConfig, {**good, "batch_attention": "sometimes"})
    bad = tmp_path / "bad.yaml"
    bad.write_text("backbone: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        config.load(ModelConfig, bad)


def test_save_is_atomic_and_readable(tmp_path):
    cfg = parse_model_name("AF3-sum-1024-attn3-1sum", num_classes=45)
    path = config.save(cfg, tmp_path / "model.json")
    assert json.loads(path.read_text())["num_classes"] == 45
    assert config.load(ModelConfig, path) == cfg
    assert [p.name for p in tmp_path.iterdir()] == ["model.json"]  # no temp file left behind


def test_cli_overrides_set_nested_fields_and_are_checked():
    from adfl_deploy.config import with_overrides
    from adfl_deploy.errors import ConfigError
    from adfl_deploy.pipeline.core import PipelineConfig

    base = PipelineConfig()
    cfg = with_overrides(
        base, {"detector": "motion", "max_frames": None}, ["association.merge_threshold=0.3", "sources=[a=x.mp4]"]
    )
    assert cfg.detector == "motion" and cfg.max_frames == base.max_frames  # None: flag not given
    assert cfg.association.merge_threshold == 0.3 and cfg.sources == ["a=x.mp4"]
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        with_overrides(base, {}, ["association.merge_threshold"])
    with pytest.raises(ConfigError, match="merge_treshold"):
        with_overrides(base, {}, ["association.merge_treshold=0.3"])  # a typo is named, not ignored
    with pytest.raises(ConfigError, match="detector is not a config section"):
        with_overrides(base, {}, ["detector.name=x"])


def test_a_field_the_name_sets_cannot_also_be_passed():
    with pytest.raises(ConfigError, match="ibn is set by the name") as err:
        parse_model_name("baseline@resnet18", ibn=True)
    assert "\n" not in str(err.value)
