"""The shared training loop: batching, resume after an interruption, NaN stop, labels rules."""

from __future__ import annotations

import copy
import itertools
import json

import numpy as np
import pytest
from compress_models import digits_source, one_torch_thread

from edgeship.compress import train, training_data
from edgeship.compress.train_settings import TrainSettings
from edgeship.core.data import Dataset
from edgeship.core.errors import BadInput


@pytest.fixture(scope="module")
def digits():
    with one_torch_thread():
        yield digits_source()


@pytest.fixture(scope="module")
def train_rows(digits):
    return training_data.load_training_data("data:digits-train", digits, limit=256)


def test_collate_pads_uneven_sequences_with_zeros():
    a = {"ids": np.array([[5, 6, 7]]), "mask": np.array([[1, 1, 1]])}
    b = {"ids": np.array([[8]]), "mask": np.array([[1]])}
    out = train.collate([a, b])
    assert out["ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert out["mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


def _settings(**kw):
    base = dict(epochs=2, lr=1e-3, batch_size=32, seed=0, checkpoint_every=2, alpha=0.5)
    base.update(kw)
    return TrainSettings(**base)


def test_interrupted_run_resumes_and_matches_an_uninterrupted_run(digits, train_rows, tmp_path):
    with one_torch_thread():
        straight = copy.deepcopy(digits.module)
        train.fit(straight, digits.module, train_rows, ["input"], "classification", _settings(),
                  checkpoint_dir=tmp_path / "a", run_key="k", quiet=True)

        class Stop(Exception):
            pass

        def interrupt(step, loss):
            if step == 7:
                raise Stop

        first = copy.deepcopy(digits.module)
        with pytest.raises(Stop):
            train.fit(first, digits.module, train_rows, ["input"], "classification", _settings(),
                      checkpoint_dir=tmp_path / "b", run_key="k", quiet=True, on_step=interrupt)
        assert json.loads((tmp_path / "b" / "state.json").read_text())["step"] == 6
        resumed = copy.deepcopy(digits.module)  # a fresh process would rebuild the module like this
        report = train.fit(resumed, digits.module, train_rows, ["input"], "classification", _settings(),
                           checkpoint_dir=tmp_path / "b", run_key="k", quiet=True)
    assert report.resumed_from_step == 6 and report.steps == 16
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert np.allclose(a.numpy(), b.numpy(), atol=1e-6), name


def test_checkpoint_of_another_run_is_not_used(digits, train_rows, tmp_path):
    with one_torch_thread():
        m = copy.deepcopy(digits.module)
        train.fit(m, digits.module, train_rows, ["input"], "classification", _settings(max_steps=2),
                  checkpoint_dir=tmp_path, run_key="one", quiet=True)
        report = train.fit(copy.deepcopy(digits.module), digits.module, train_rows, ["input"], "classification",
                           _settings(max_steps=2), checkpoint_dir=tmp_path, run_key="two", quiet=True)
    assert report.resumed_from_step == 0


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(digits, train_rows, tmp_path):
    from safetensors.torch import load_file

    samples = [dict(s) for s in train_rows.samples[:64]]
    samples[40] = {"input": np.full((1, 1, 8, 8), np.nan, np.float32)}  # a corrupt row
    ds = Dataset("corrupt", samples, train_rows.labels[:64])
    with one_torch_thread(), pytest.raises(train.TrainingDiverged) as exc:
        train.fit(copy.deepcopy(digits.module), digits.module, ds, ["input"], "classification",
                  _settings(epochs=1, batch_size=8, checkpoint_every=1), checkpoint_dir=tmp_path, run_key="n",
                  quiet=True)
    msg = str(exc.value)
    assert "nan" in msg and "last good checkpoint" in msg and "\n" not in msg
    saved = json.loads((tmp_path / "state.json").read_text())["step"]
    assert f"step {saved})" in msg
    weights = load_file(str(tmp_path / "model.safetensors"))
    assert all(np.isfinite(w.numpy()).all() for w in weights.values())


def test_hard_labels_need_labelled_data(digits, train_rows):
    unlabelled = Dataset("x", train_rows.samples, None)
    with pytest.raises(BadInput, match="no labels"):
        train.resolve_alpha(0.5, "classification", unlabelled)
    assert train.resolve_alpha(None, "classification", unlabelled) == 1.0
    assert train.resolve_alpha(None, "classification", train_rows) == 0.5
    with pytest.raises(BadInput, match="no labels"):
        train.fit(copy.deepcopy(digits.module), digits.module, unlabelled, ["input"], "classification",
                  _settings(alpha=0.5), quiet=True)
    # alpha None (auto) is resolved by fit itself: teacher only without labels, so this trains
    report = train.fit(copy.deepcopy(digits.module), digits.module, unlabelled, ["input"], "classification",
                       _settings(alpha=None, max_steps=1), quiet=True)
    assert report.steps == 1


def test_training_lowers_the_loss(digits, train_rows):
    import torch

    with one_torch_thread():
        torch.manual_seed(1)
        student = type(digits.module)()  # an untrained student of the same architecture
        report = train.fit(student, digits.module, train_rows, ["input"], "classification",
                           _settings(epochs=5, lr=3e-3, temperature=1.0, grad_clip=None), quiet=True)
    assert report.last_loss < report.first_loss * 0.5


def test_learning_rate_warms_up_then_decays_and_resumes_on_the_same_curve():
    s = _settings(lr=1e-3, schedule="linear", warmup=0.1)
    curve = [train.lr_at(i, 100, s) for i in range(100)]
    assert curve[0] == pytest.approx(1e-4) and curve[9] == pytest.approx(1e-3)  # 10 warm-up steps
    assert all(a < b for a, b in itertools.pairwise(curve[:10]))
    assert all(a > b for a, b in itertools.pairwise(curve[10:])) and curve[-1] < 2e-5
    cos = [train.lr_at(i, 100, _settings(lr=1e-3, schedule="cosine")) for i in range(100)]
    assert cos[0] == pytest.approx(1e-3) and cos[50] == pytest.approx(5e-4, rel=0.05) and cos[99] < 1e-6
    assert {train.lr_at(i, 100, _settings(lr=1e-3)) for i in range(100)} == {1e-3}  # the default stays constant


def test_bucketed_batches_group_similar_lengths_and_cover_every_row_once():
    rng = np.random.default_rng(0)
    lengths = rng.integers(2, 60, size=640)
    ds = Dataset("text", [{"ids": np.full((1, int(n)), i + 1)} for i, n in enumerate(lengths)])

    def padded_tokens(bucket):
        seen, padded = [], 0
        for feeds, _ in train.batches(ds, 16, epoch=0, seed=0, bucket=bucket):
            seen.extend(int(row[0]) for row in feeds["ids"])
            padded += feeds["ids"].size
        assert sorted(seen) == list(range(1, 641))  # every row exactly once
        return padded

    assert padded_tokens(True) < 0.7 * padded_tokens(False)
    first = [f["ids"][:, 0].tolist() for f, _ in train.batches(ds, 16, 0, 0, bucket=True)]
    again = [f["ids"][:, 0].tolist() for f, _ in train.batches(ds, 16, 0, 0, bucket=True)]
    other = [f["ids"][:, 0].tolist() for f, _ in train.batches(ds, 16, 1, 0, bucket=True)]
    assert first == again != other  # the order depends on (seed, epoch) only: a resumed run sees the same
