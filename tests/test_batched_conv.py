"""The stacked engine for the conv nets (``torch.func``): the MLP engine's guarantees carry over —
k = 2, 4 equal k = 1 bit for bit, a variant's bits do not depend on its place in the stack or the
stack's size, a killed run resumes bitwise, BatchNorm keeps each variant's running statistics, and
it is the loop engine's algorithm (equal to float32 rounding: other kernels, other summation order)."""

import pytest
import torch

from instab.batched import StackedEngine
from instab.models import build_model
from instab.studies.sgd import trained_state
from instab.train import RunConfig, Variant, dumps, ks, train

BASE = RunConfig(dataset="fashion_mnist", train_size=128, test_size=64, batch_size=32, epochs=2, lr=0.05,
                 momentum=0.9, weight_decay=5e-4, lr_decay_every=1, engine="stacked")
NETS = {"cnn": BASE.replace(model="cnn", widths=(4, 8)),
        "cnn_bn": BASE.replace(model="cnn_bn", widths=(4, 8)),
        "resnet8": BASE.replace(model="resnet8")}


@pytest.mark.parametrize("net", list(NETS))
def test_k2_and_k4_equal_k1_and_k3_differs(net):
    h = train(NETS[net].replace(variants=ks(1, 2, 3, 4), rel_l1_every=1))
    assert h.iter_rel_l1["k=1"] == [0.0] * len(h.iter_step) and h.rel_l1["k=1"] == [0.0] * len(h.epoch)
    for k in ("k=2", "k=4"):
        assert h.iter_rel_l1[k] == [0.0] * len(h.iter_step)
        assert h.train_loss[k] == h.train_loss["k=1"]
        assert (h.predictions[k] == h.predictions["k=1"]).all()
    # k = 3: the same start, then a difference at some step (a step moves a last bit only where a
    # weight's rounding falls differently: a handful of weights, or none — test_train's release
    # form on an AMD EPYC at step 1); its size later is the chaos of one run, only bounded
    r3 = h.iter_rel_l1["k=3"]
    assert r3[0] == 0.0 and any(x > 0.0 for x in r3[1:]) and all(0.0 <= x <= 2.0 for x in r3)
    assert h.settings["engine"] == "stacked"


def _engine(config: RunConfig, seed: int = 0) -> StackedEngine:
    base = build_model(config.model, in_channels=1, num_classes=10, input_size=28, widths=config.widths, seed=seed)
    return StackedEngine(config, base)


def _steps(engine: StackedEngine, n: int = 3) -> StackedEngine:
    g = torch.Generator().manual_seed(1)
    engine.begin_epoch(0.05)
    for _ in range(n):
        engine.step(torch.randn(16, 1, 28, 28, generator=g), torch.randint(0, 10, (16,), generator=g))
    return engine


def _state(engine: StackedEngine, i: int) -> dict[str, torch.Tensor]:
    return engine.net.state_dict(i)


@pytest.mark.parametrize("net", ["cnn_bn", "resnet8"])
def test_a_variant_does_not_depend_on_its_place_or_the_stack_size(net):
    """k = 3 alone (a stack of one, which carries a silent copy), second of two, first of three, last of eight."""
    config = NETS[net]
    stacks = {(3,): 0, (1, 3): 1, (3, 1, 5): 0, (1, 5, 7, 9, 11, 13, 15, 3): 7}
    states = [_state(_steps(_engine(config.replace(variants=ks(*s)))), i) for s, i in stacks.items()]
    for other in states[1:]:
        assert other.keys() == states[0].keys()
        for name, t in states[0].items():
            assert torch.equal(t, other[name]), name
    assert any("running_mean" in n for n in states[0])
    assert not torch.equal(states[0][next(n for n in states[0] if "running_mean" in n)],
                           torch.zeros_like(states[0][next(n for n in states[0] if "running_mean" in n)]))


@pytest.mark.parametrize("net", ["cnn_bn", "resnet8"])
@pytest.mark.parametrize("reference", [Variant(1), Variant(3), Variant(3, form="release")], ids=str)
@pytest.mark.parametrize("nesterov", [False, True])
def test_same_algorithm_as_the_loop_engine(net, reference, nesterov):
    """Weights and running statistics after 2 steps across an lr-decay boundary (after step 1: the
    second step is taken at the decayed lr, with the momentum buffer of the first) agree with the
    loop engine's to float32 rounding (a dropped Nesterov term, lr decay or a wrong release-form
    step would differ by orders of magnitude more).  Two steps, not more: each further step lets
    the network's chaos grow the engines' rounding differences by a factor that depends on the
    CPU's kernels — at 4 steps the release form on ResNet-8 used 74% of this tolerance on an AMD
    EPYC, after 8 steps they reach 1%; at 2 steps every case here uses about 0.1% of it, and a
    flipped Nesterov term 250 to 700 times all of it."""
    config = NETS[net].replace(variants=(reference,), nesterov=nesterov, keep_final=True, train_size=32)
    stacked, loop = train(config), train(config.replace(engine="loop"))
    for name, t in loop.final_state["model"].items():
        if t.is_floating_point():
            torch.testing.assert_close(stacked.final_state["model"][name], t, rtol=2e-4, atol=2e-5, msg=name)
        else:
            assert torch.equal(stacked.final_state["model"][name], t), name
    assert stacked.train_loss[reference.name] == pytest.approx(loop.train_loss[reference.name], rel=1e-4)


def test_two_runs_equal_and_a_killed_run_resumes_bitwise(killed_and_resumed):
    config = NETS["cnn_bn"].replace(variants=(Variant(1), Variant(3), Variant(3, form="release")), epochs=3)
    full = train(config)
    assert dumps(full) == dumps(train(config))
    resumed = killed_and_resumed(config)
    assert resumed.epoch == [1, 2, 3] and dumps(resumed) == dumps(full)


def test_final_state_loads_into_the_network_with_its_running_statistics():
    h = train(NETS["cnn_bn"].replace(variants=ks(1, 3), keep_final=True))
    model, v = trained_state(h)
    assert [t.shape for t in v] == [p.shape for p in model.parameters()]
    assert float(model.features[1].running_var.sub(1).abs().max()) > 0  # trained statistics, not the initial ones
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_float64_starts_at_the_last_bit_of_a_double():
    """The float64 runs part at the last bits of a double: the first step at which they differ (the
    first, unless no weight's rounding falls differently there) differs by less than 50 of its ulps
    on average over the weights, seven decades below float32's.  Whether the difference then grows
    is the chaos of one small run (it shrank on a Xeon), so later steps are only bounded."""
    h = train(NETS["cnn"].replace(variants=ks(1, 3), dtype="float64", rel_l1_every=1))
    r = h.iter_rel_l1["k=3"]
    first = next((x for x in r if x > 0), 0.0)
    assert r[0] == 0.0 and 0 < first < 50 * torch.finfo(torch.float64).eps
    assert all(0.0 <= x <= 2.0 for x in r)  # finite: RelL1 is at most 2


def test_vgg16_bn_k2_equals_k1():
    config = BASE.replace(model="vgg16_bn", pad_to=32, train_size=16, test_size=8, batch_size=8, epochs=1,
                          variants=ks(1, 2, 3), rel_l1_every=1)
    h = train(config)
    assert h.iter_rel_l1["k=2"] == [0.0] * len(h.iter_step) and any(h.iter_rel_l1["k=3"][1:])


def test_an_augmented_batch_keeps_a_variant_independent_of_its_stack():
    """Augmented one-channel batches come strided like channels-last; unless the engine lays them
    out plainly, the convolution takes a kernel whose bits depend on the stack (found by gpu_run.py)."""
    from instab.data import Loader
    from instab.train import load_data

    config = NETS["resnet8"].replace(augment=True, train_size=256, batch_size=128)
    data = load_data(config)
    batches = list(Loader(data.x_train, data.y_train, 128, seed=0, augment=True, augment_seed=0).epoch(0))
    assert batches[0][0].stride() != (784, 784, 28, 1)  # the layout that needs it

    def state(stack: tuple[int, ...]) -> dict[str, torch.Tensor]:
        engine = _engine(config.replace(variants=ks(*stack)))
        engine.begin_epoch(0.05)
        for x, y in batches:
            engine.step(x, y)
        return _state(engine, stack.index(3))

    states = [state(s) for s in ((1, 2, 3), (5, 3), (3,))]
    for other in states[1:]:
        for name, t in states[0].items():
            assert torch.equal(t, other[name]), name


@pytest.mark.parametrize("net", ["mlp", "cnn_bn"])
def test_the_initial_states_are_the_loop_engines(net):
    """Every variant starts where the loop engine's does, bit for bit: the one-ulp changes of an
    initial weight (at its index) included, in stacks of one, two and three."""
    from instab.batched import StackedMLP, StackedNet
    from instab.train import LoopEngine

    config = (NETS["cnn_bn"] if net == "cnn_bn" else BASE.replace(model="mlp", hidden=(16, 8)))
    base = build_model(config.model, in_channels=1, num_classes=10, input_size=28, widths=config.widths,
                       hidden=config.hidden, seed=0)
    for variants in ((Variant(1, init_ulp=1, init_index=7),),
                     (Variant(1), Variant(1, init_ulp=1, init_index=7)),
                     (Variant(3), Variant(1, init_ulp=-2), Variant(1, init_ulp=1, init_index=7))):
        c = config.replace(variants=variants)
        stacked, loop = StackedEngine(c, base), LoopEngine(c, base)
        assert isinstance(stacked.net, StackedMLP if net == "mlp" else StackedNet)
        for i, model in enumerate(loop.models):
            for name, t in model.state_dict().items():
                assert torch.equal(stacked.net.state_dict(i)[name], t), (variants, i, name)


def test_the_optimizer_state_of_each_variant_is_the_loop_engines():
    """``state_dict(i)`` of the stacked optimizer has variant i's settings and momentum buffers in
    torch.optim.SGD's format, as the loop engine's PerturbedSGD of that variant has them."""
    from instab.train import LoopEngine

    c = NETS["cnn_bn"].replace(variants=(Variant(1), Variant(3, form="release")), nesterov=True, dampening=0.0)
    base = build_model(c.model, in_channels=1, num_classes=10, input_size=28, widths=c.widths, seed=0)
    stacked, loop = _steps(StackedEngine(c, base)), LoopEngine(c, base)
    g = torch.Generator().manual_seed(1)
    loop.begin_epoch(0.05)
    for _ in range(3):
        loop.step(torch.randn(16, 1, 28, 28, generator=g), torch.randint(0, 10, (16,), generator=g))
    for i in range(2):
        mine, theirs = stacked.opt.state_dict(i), loop.opts[i].state_dict()
        keys = ("momentum", "weight_decay", "dampening", "nesterov", "k", "form")
        assert {k: mine["param_groups"][0][k] for k in keys} == {k: theirs["param_groups"][0][k] for k in keys}
        for j, s in theirs["state"].items():
            torch.testing.assert_close(mine["state"][j]["momentum_buffer"], s["momentum_buffer"], rtol=1e-4, atol=1e-5)
