"""Lockstep perturbed-SGD training: determinism, the k controls, schedule, validation."""

import math

import pytest
import torch

from instab.train import RunConfig, Variant, dumps, ks, lr_at, perturb_init, train

TINY = RunConfig(model="cnn", dataset="fashion_mnist", widths=(4, 8), train_size=256, test_size=128,
                 batch_size=64, epochs=2, lr=0.1, momentum=0.9, weight_decay=5e-4)


def test_two_k1_runs_are_bitwise_equal():
    config = TINY.replace(variants=ks(1))
    assert dumps(train(config)) == dumps(train(config))


def test_k2_and_k4_equal_k1_and_k3_differs_in_lockstep():
    h = train(TINY.replace(variants=ks(1, 2, 4, 3), rel_l1_every=1))
    for k in ("k=2", "k=4"):
        assert h.iter_rel_l1[k] == [0.0] * len(h.iter_step)
        assert h.train_loss[k] == h.train_loss["k=1"]
        assert (h.predictions[k] == h.predictions["k=1"]).all()
    r3 = h.iter_rel_l1["k=3"]
    # same start, then the last-bit perturbation shows at some step (at the first only where some
    # weight's rounding falls differently); its size later is the chaos of one run, only bounded
    assert r3[0] == 0.0 and any(x > 0.0 for x in r3[1:]) and all(0.0 <= x <= 2.0 for x in r3)
    assert h.rel_l1["k=3"][-1] == r3[-1]
    assert h.iter_step == list(range(0, 9))
    assert "BatchNorm" in h.notes and h.settings["deterministic_algorithms"]


def test_release_form_and_init_ulp_are_perturbations_too():
    variants = (Variant(1), Variant(3, form="release"), Variant(1, init_ulp=1))
    h = train(TINY.replace(variants=variants, epochs=1, rel_l1_every=1))
    assert h.variants == ["k=1", "k=3,release", "k=1,init+1ulp"]
    init = h.iter_rel_l1["k=1,init+1ulp"]
    assert 0 < init[0] < 1e-6  # one ulp of one weight at step 0
    # the release form shows at some step (not at the first on an AMD EPYC: no weight rounds differently)
    assert h.iter_rel_l1["k=3,release"][0] == 0.0 and any(h.iter_rel_l1["k=3,release"][1:])


@pytest.mark.parametrize("index, expected", [(None, 3), (0, 0), (5, 5), (8, 2)])
def test_perturb_init_moves_one_weight_by_one_ulp(index, expected):
    m = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    before = [p.detach().clone() for p in m.parameters()]
    assert perturb_init(m, 1, index) == expected  # the last weight matrix; default: its middle entry
    after = list(m.parameters())
    diff = (after[2] - before[2]).flatten()
    assert (diff != 0).sum() == 1
    assert after[2].flatten()[expected] == torch.nextafter(before[2].flatten()[expected], torch.tensor(math.inf))
    assert all(torch.equal(a, b) for i, (a, b) in enumerate(zip(after, before, strict=True)) if i != 2)


def test_schedule_and_max_steps():
    c = RunConfig(lr=0.1, lr_decay=0.1, lr_decay_every=40)
    assert [lr_at(c, e) for e in (0, 39, 40, 80)] == [0.1, 0.1, 0.1 * 0.1, 0.1 * 0.1 * 0.1]
    assert lr_at(c.replace(lr_decay_every=0), 100) == 0.1
    h = train(TINY.replace(variants=ks(1), epochs=None, max_steps=6))
    assert h.steps == [4, 6] and h.epoch == [1, 2]


@pytest.mark.parametrize("changes, word", [
    (dict(model="alexnet"), "alexnet"),
    (dict(dataset="mnist_digits"), "mnist_digits"),
    (dict(activation="tanh"), "tanh"),
    (dict(lr=-0.1), "lr=-0.1"),
    (dict(variants=ks(0)), "k=0"),
    (dict(variants=(Variant(k=3, form="exact"),)), "exact"),
    (dict(epochs=0), "epochs=0"),
    (dict(batch_size=0), "batch_size=0"),
    (dict(variants=ks(1, 1)), "variants"),
    (dict(device="tpu"), "tpu"),
])
def test_bad_configurations_raise_before_training(changes, word, monkeypatch):
    import instab.train as T

    def no_training(*a, **k):
        raise AssertionError("training started")

    monkeypatch.setattr(T, "_train", no_training)
    with pytest.raises(ValueError, match=word):
        train(TINY.replace(**changes))


def test_missing_data_raises_before_training(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTAB_DATA", str(tmp_path))
    monkeypatch.setenv("INSTAB_DOWNLOAD", "0")
    with pytest.raises(FileNotFoundError, match="CIFAR-10"):
        train(TINY.replace(dataset="cifar10"))


def test_thread_count_is_part_of_the_variant_and_switching_keeps_determinism():
    variants = (Variant(1), Variant(1, threads=1), Variant(1, threads=2))
    h = train(TINY.replace(variants=variants, epochs=1, rel_l1_every=2))
    assert h.settings["variant_threads"] == {"k=1": 1, "k=1,threads=1": 1, "k=1,threads=2": 2}
    assert h.iter_rel_l1["k=1,threads=1"] == [0.0] * len(h.iter_step)  # same threads: same bits


def test_checkpoints_are_written_when_due(tmp_path, monkeypatch):
    """A checkpoint after an epoch only once ``checkpoint_seconds`` have passed since the last
    (0: after every epoch); the interval is read from $INSTAB_CHECKPOINT_SECONDS and checked."""
    from instab import store

    config = TINY.replace(variants=ks(1, 3), epochs=3)
    ckpt = tmp_path / "c.pkl"
    for seconds, written in ((0, [1, 2, 3]), (3600, [])):
        ckpt.unlink(missing_ok=True)
        seen: list[int] = []

        def look(epoch, _, seen=seen):
            state = store.load_object(ckpt)
            if state is not None and state["epoch"] == epoch:
                seen.append(epoch)

        train(config, checkpoint=ckpt, on_epoch=look, checkpoint_seconds=seconds)
        assert seen == written
    monkeypatch.setenv("INSTAB_CHECKPOINT_SECONDS", "3600")
    ckpt.unlink(missing_ok=True)
    train(config, checkpoint=ckpt)
    assert not ckpt.exists()
    for bad in ("-1", "soon", "nan"):
        monkeypatch.setenv("INSTAB_CHECKPOINT_SECONDS", bad)
        with pytest.raises(ValueError, match=f"checkpoint seconds '{bad}'.*number >= 0"):
            train(config, checkpoint=ckpt)


def test_train_restores_the_callers_thread_count():
    before = torch.get_num_threads()
    train(TINY.replace(variants=ks(1), epochs=1, threads=2))
    assert torch.get_num_threads() == before


def test_cross_entropy_and_gradient():
    from instab.models import build_model
    from instab.train import cross_entropy, gradient

    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(50, 10, generator=g), torch.randint(0, 10, (50,), generator=g)
    assert torch.allclose(cross_entropy(logits, y), torch.nn.functional.cross_entropy(logits, y), atol=1e-6)
    model = build_model("mlp", in_channels=1, num_classes=10, input_size=4, hidden=(8,), seed=0)
    x = torch.randn(30, 1, 4, 4, generator=g)
    yy = torch.randint(0, 10, (30,), generator=g)
    full = gradient(model, x, yy, batch_size=7)  # accumulated over uneven chunks
    model.zero_grad()
    cross_entropy(model(x), yy).backward()
    assert all(torch.allclose(a, p.grad, atol=1e-6) for a, p in zip(full, model.parameters(), strict=True))


def test_each_variant_steps_under_its_own_thread_count(monkeypatch):
    """The thread count in force while each variant computes its loss, read during the run (not
    from the configuration): the loop engine switches per variant, and restores the run's count."""
    import instab.train as T

    seen: list[int] = []
    real = T.cross_entropy

    def spy(logits, y, *a, **kw):
        seen.append(torch.get_num_threads())
        return real(logits, y, *a, **kw)

    monkeypatch.setattr(T, "cross_entropy", spy)
    variants = (Variant(1), Variant(3, threads=2), Variant(5))
    h = train(TINY.replace(variants=variants, epochs=1, train_size=128))
    steps = h.steps[-1]
    assert steps >= 2 and seen == [1, 2, 1] * steps
