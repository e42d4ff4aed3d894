import os

# Tests pin one thread: weights are bitwise reproducible only at a fixed thread count.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Tests kill runs after a given epoch and resume them: a checkpoint after every epoch (the default
# writes one only every instab.history.CHECKPOINT_SECONDS), in this process and in its workers.
os.environ.setdefault("INSTAB_CHECKPOINT_SECONDS", "0")

import pytest  # noqa: E402

#: Test modules whose tests train a network or run a chapter's computation: their outcomes rest on
#: the CPU's kernels, so `make test` runs them once more under a second floating-point environment
#: (instab.determinism.second_environment).  A test there may assert a control (bitwise equal runs),
#: a bound or a statistic, never the direction of one perturbed run.
TRAINS = {
    "test_batched", "test_batched_conv", "test_train", "test_optim", "test_stability", "test_models",
    "test_metrics", "test_grid", "test_studies_sgd", "test_studies_sgd_growth", "test_studies_sgd_variance",
    "test_studies_sgd_threshold", "test_studies_open_questions", "test_studies_multilayer", "test_benchmarks",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.module is not None and item.module.__name__.rsplit(".", 1)[-1] in TRAINS:
            item.add_marker(pytest.mark.trains)


@pytest.fixture
def killed_and_resumed(tmp_path):
    """``killed_and_resumed(config, at=2)``: train ``config`` with a checkpoint, kill it after epoch
    ``at`` (an exception from ``on_epoch``), rerun it from the checkpoint and return the history."""
    from instab.train import train

    class Killed(Exception):
        pass

    def run(config, at: int = 2):
        def die(epoch, _):
            if epoch == at:
                raise Killed

        with pytest.raises(Killed):
            train(config, checkpoint=tmp_path / "c.pkl", on_epoch=die, checkpoint_seconds=0)
        return train(config, checkpoint=tmp_path / "c.pkl", checkpoint_seconds=0)

    return run
