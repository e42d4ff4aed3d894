"""Networks of paper §4: parameter counts, shapes, activations, seeded initialisation, errors."""

import pytest
import torch

from instab.models import Swish, build_model, count_parameters


@pytest.mark.parametrize("name, shortcut, count", [
    ("resnet20", "identity", 269_722),  # He et al.'s option A: the well-known 0.27M
    ("resnet56", "identity", 853_018),  # 0.85M
    ("resnet20", "conv", 272_474),      # 1×1 conv + BN shortcuts (authors' release)
    ("resnet56", "conv", 855_770),
    ("resnet8", "conv", 78_042),
])
def test_resnet_parameter_counts(name, shortcut, count):
    assert count_parameters(build_model(name, in_channels=3, num_classes=10, shortcut=shortcut)) == count


def test_vgg16_bn_parameter_count():
    # 13 conv layers (with bias) + BN + one linear classifier, CIFAR variant: ≈ 14.7M
    assert count_parameters(build_model("vgg16_bn", in_channels=3, num_classes=10)) == 14_728_266


@pytest.mark.parametrize("name", ["resnet8", "vgg16_bn", "mlp", "cnn", "cnn_bn"])
@pytest.mark.parametrize("channels, side", [(1, 28), (3, 32)])
def test_forward_shapes(name, channels, side):
    if name == "vgg16_bn":
        side = 32
    model = build_model(name, in_channels=channels, num_classes=10, input_size=side, activation="swish",
                        beta=2.0)
    assert model(torch.randn(2, channels, side, side)).shape == (2, 10)


def test_small_nets_with_and_without_batchnorm():
    plain = build_model("cnn", in_channels=1, num_classes=10)
    bn = build_model("cnn_bn", in_channels=1, num_classes=10)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in bn.modules())
    assert count_parameters(plain) == 16 * 9 + 16 + 32 * 16 * 9 + 32 + 32 * 10 + 10


def test_swish_formula_and_limit():
    x = torch.linspace(-5, 5, 101, dtype=torch.float64)
    assert torch.allclose(Swish(2.5)(x), x / (1 + torch.exp(-2.5 * x)))
    assert torch.allclose(Swish(1e4)(x), torch.relu(x), atol=1e-6)
    model = build_model("resnet8", in_channels=1, num_classes=10, activation="swish", beta=3.0)
    swishes = [m for m in model.modules() if isinstance(m, Swish)]
    assert swishes and all(m.beta == 3.0 for m in swishes)
    assert not any(isinstance(m, torch.nn.ReLU) for m in model.modules())


def test_seeded_initialisation_is_reproducible_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    a = build_model("resnet8", in_channels=1, num_classes=10, seed=5)
    b = build_model("resnet8", in_channels=1, num_classes=10, seed=5)
    c = build_model("resnet8", in_channels=1, num_classes=10, seed=6)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters(), strict=True))


@pytest.mark.parametrize("kwargs, word", [
    (dict(name="resnet21"), "resnet21"),
    (dict(name="alexnet"), "alexnet"),
    (dict(name="cnn", activation="tanh"), "tanh"),
    (dict(name="cnn", activation="swish", beta=0.0), "beta"),
    (dict(name="cnn", in_channels=2), "in_channels"),
    (dict(name="cnn", pool="median"), "median"),
    (dict(name="vgg16_bn", input_size=28), "input_size"),
])
def test_bad_arguments_name_the_value(kwargs, word):
    kwargs = {"in_channels": 1, "num_classes": 10, **kwargs}
    with pytest.raises(ValueError, match=word) as err:
        build_model(kwargs.pop("name"), **kwargs)
    if word in ("alexnet", "tanh"):
        assert "choose one of" in str(err.value)


def test_resnet_state_dict_keys_per_stage_load_a_reference_checkpoint():
    """The reference CIFAR ResNets' keys (conv1, bn1, layer1..3, linear) map onto ours one to one."""
    import torch

    from instab.models import build_model

    net = build_model("resnet20", in_channels=3, num_classes=10, seed=0)
    keys = list(net.state_dict())
    assert keys[:2] == ["conv1.weight", "bn1.weight"] and keys[-2:] == ["linear.weight", "linear.bias"]
    assert {k.split(".")[0] for k in keys} == {"conv1", "bn1", "layer1", "layer2", "layer3", "linear"}
    assert "layer2.0.shortcut.0.weight" in keys and "layer3.2.conv2.weight" in keys
    other = build_model("resnet20", in_channels=3, num_classes=10, seed=1)
    reference = {k: v.clone() for k, v in other.state_dict().items()}  # a checkpoint with those keys
    net.load_state_dict(reference)  # strict: every key matches
    assert all(torch.equal(net.state_dict()[k], v) for k, v in reference.items())
