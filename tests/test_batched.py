"""The stacked engine (``engine="stacked"``): the same algorithm as the loop engine, and the
controls hold — k = 2, 4 equal k = 1 bit for bit, two runs are equal, a killed run resumes bitwise."""

import pytest
import torch

from instab.batched import StackedMLP, unsupported
from instab.studies.sgd import trained_state
from instab.train import RunConfig, Variant, dumps, ks, train

MLP = RunConfig(model="mlp", hidden=(16, 8), activation="swish", dataset="fashion_mnist", train_size=256,
                test_size=128, batch_size=64, epochs=3, lr=0.1, momentum=0.9, weight_decay=5e-4,
                lr_decay_every=2, engine="stacked")


def test_k2_and_k4_equal_k1_and_k3_k5_differ():
    h = train(MLP.replace(variants=ks(1, 2, 3, 4, 5), rel_l1_every=1))
    for k in ("k=2", "k=4"):
        assert h.iter_rel_l1[k] == [0.0] * len(h.iter_step)
        assert h.train_loss[k] == h.train_loss["k=1"]
        assert (h.predictions[k] == h.predictions["k=1"]).all()
    for k in ("k=3", "k=5"):  # a last-bit difference at some step; its size later is chaos, only bounded
        r = h.iter_rel_l1[k]
        assert r[0] == 0.0 and any(x > 0.0 for x in r[1:]) and all(0.0 <= x <= 2.0 for x in r)
    assert h.settings["engine"] == "stacked"


def test_a_variant_does_not_depend_on_its_place_in_the_stack():
    a = train(MLP.replace(variants=ks(1, 3, 5)))
    b = train(MLP.replace(variants=ks(1, 5, 3, 7)))
    for k in ("k=3", "k=5"):
        assert a.train_loss[k] == b.train_loss[k] and a.rel_l1[k] == b.rel_l1[k]


def test_two_runs_are_bitwise_equal_and_release_form_mixes():
    config = MLP.replace(variants=(Variant(1), Variant(3), Variant(3, form="release"), Variant(1, init_ulp=1)),
                         rel_l1_every=1)
    h = train(config)
    assert dumps(h) == dumps(train(config))
    # each perturbation shows: the initial ulp at step 0 (by construction), a perturbed update at
    # some step (whether and how it grows later is the chaos of one run, not checked)
    r = h.iter_rel_l1
    assert r["k=1,init+1ulp"][0] > 0 and any(r["k=3"][1:]) and any(r["k=3,release"][1:])


@pytest.mark.parametrize("activation", ["relu", "swish"])
@pytest.mark.parametrize("reference", [Variant(1), Variant(3), Variant(3, form="release")], ids=str)
@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("dtype, rtol", [("float32", 1e-5), ("float64", 1e-13)])
def test_same_algorithm_as_the_loop_engine(activation, reference, nesterov, dtype, rtol):
    """Other summation order, same algorithm: after 6 steps across an lr-decay boundary (after step
    2 and step 4) the engines agree to the dtype's rounding, for each activation, k = 1, k = 3 and
    the release form, with and without Nesterov — a dropped Nesterov term, a dropped lr decay or a
    release-form step k² too large differ by orders of magnitude more."""
    config = MLP.replace(variants=(reference,), activation=activation, nesterov=nesterov, dtype=dtype,
                         train_size=128, epochs=3, lr_decay_every=1, keep_final=True)
    stacked, loop = train(config), train(config.replace(engine="loop"))
    assert stacked.lr == loop.lr == pytest.approx([0.1, 0.01, 0.001])
    for name, t in stacked.final_state["model"].items():
        assert t.dtype == getattr(torch, dtype)
        torch.testing.assert_close(t, loop.final_state["model"][name], rtol=rtol, atol=rtol / 10)
    for a, b in zip(stacked.final_state["optimizer"]["state"].values(), loop.final_state["optimizer"]["state"].values(),
                    strict=True):
        torch.testing.assert_close(a["momentum_buffer"], b["momentum_buffer"], rtol=rtol, atol=rtol / 10)
    assert stacked.train_loss[reference.name] == pytest.approx(loop.train_loss[reference.name], rel=rtol)


@pytest.mark.parametrize("momentum", [0.9, 0.0])
def test_kill_and_resume_is_bitwise_equal(killed_and_resumed, momentum):
    """Killed after epoch 2 and resumed from its checkpoint: the same bytes (without momentum too,
    where the checkpoint holds no momentum buffers)."""
    config = MLP.replace(variants=ks(1, 3), momentum=momentum)
    full = train(config)
    assert full.settings["variant_threads"] == {"k=1": 1, "k=3": 1}
    resumed = killed_and_resumed(config)
    assert resumed.epoch == [1, 2, 3] and dumps(resumed) == dumps(full)


def test_final_state_loads_into_the_network():
    h = train(MLP.replace(variants=ks(1, 3), keep_final=True))
    model, v = trained_state(h)
    assert [t.shape for t in v] == [p.shape for p in model.parameters()]
    x = torch.zeros(2, 1, 28, 28)
    assert model(x).shape == (2, 10)


def test_float64_starts_at_the_last_bit_of_a_double():
    """The float64 runs part at the last bits of a double: at the first step at which they differ,
    by less than 50 of its ulps on average over the weights; later steps are the chaos of one run,
    only bounded."""
    h = train(MLP.replace(variants=ks(1, 3), dtype="float64", rel_l1_every=1, epochs=1))
    r = h.iter_rel_l1["k=3"]
    first = next((x for x in r if x > 0), 0.0)
    assert r[0] == 0.0 and 0 < first < 50 * torch.finfo(torch.float64).eps
    assert all(0.0 <= x <= 2.0 for x in r)  # finite: RelL1 is at most 2


def test_eval_every_and_acc_every():
    h = train(MLP.replace(variants=ks(1, 3), eval_every=2, acc_every=3))
    assert h.test_epoch == [2, 3] and len(h.test_acc["k=3"]) == 2
    assert h.iter_acc_step == [3, 6, 9, 12] and len(h.iter_acc["k=1"]) == 4
    loop = train(MLP.replace(variants=ks(1, 3), eval_every=2, acc_every=3, engine="loop"))
    assert loop.test_epoch == [2, 3] and loop.iter_acc_step == [3, 6, 9, 12]


@pytest.mark.parametrize("changes, word", [
    (dict(variants=(Variant(1), Variant(1, threads=2))), "thread count"),
    (dict(engine="vmap"), "engine='vmap'"),
    (dict(dtype="float16"), "dtype='float16'"),
])
def test_unsupported_configurations_raise_before_training(changes, word):
    with pytest.raises(ValueError, match=word):
        MLP.replace(**changes).validate()


def test_stacked_forward_matches_each_network():
    from instab.models import build_model
    nets = [build_model("mlp", in_channels=1, num_classes=10, input_size=28, hidden=(16, 8), seed=s) for s in (0, 1)]
    x = torch.randn(5, 1, 28, 28)
    out = StackedMLP(nets).forward(x)
    for i, n in enumerate(nets):
        torch.testing.assert_close(out[i], n(x), rtol=1e-5, atol=1e-6)
    assert unsupported(MLP) is None
