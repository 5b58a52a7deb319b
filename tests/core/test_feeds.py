"""Feeds for any model: one feed set, samples on a leading axis or per batch row, shared arrays
(scalars included), and a stateful model's calls with the state carried."""

import json

import numpy as np
import pytest

from edgeship.core.artifact import IOSpec, TensorSpec
from edgeship.core.data import load_data, run_carrying
from edgeship.core.errors import BadInput

# a voice-activity detector's inputs: audio [1, 576], LSTM state [2, 1, 128], int64 scalar sample rate
VAD = IOSpec((TensorSpec("audio", "float32", (1, 576)), TensorSpec("state", "float32", (2, 1, 128)),
              TensorSpec("sr", "int64", ())),
             (TensorSpec("prob", "float32", (1, 1)), TensorSpec("new_state", "float32", (2, 1, 128))))
MLP = IOSpec((TensorSpec("x", "float32", ("batch", 16)),), (TensorSpec("y", "float32", ("batch", 4)),))


def _vad_arrays(n=None):
    lead = () if n is None else (n,)
    return {"audio": np.ones((*lead, 1, 576), np.float32), "state": np.zeros((*lead, 2, 1, 128), np.float32),
            "sr": np.array([16000] * n if n else 16000, np.int64)}


def test_arrays_at_the_models_ranks_are_one_feed_set_scalars_included(tmp_path):
    np.savez(tmp_path / "one.npz", **_vad_arrays())
    ds = load_data(tmp_path / "one.npz", VAD)
    assert len(ds) == 1
    assert ds.samples[0]["sr"].shape == () and int(ds.samples[0]["sr"]) == 16000
    assert ds.samples[0]["state"].shape == (2, 1, 128)
    assert ds.info["feeds"] == "one feed set (every array at the model's own rank)"


def test_an_extra_leading_axis_holds_samples(tmp_path):
    np.savez(tmp_path / "many.npz", **_vad_arrays(5))
    ds = load_data(tmp_path / "many.npz", VAD)
    assert len(ds) == 5 and ds.samples[3]["audio"].shape == (1, 576) and ds.samples[3]["sr"].shape == ()
    assert ds.info["feeds"].startswith("5 samples on an extra leading axis of audio, state, sr")


def test_a_leading_axis_with_shared_arrays(tmp_path):
    arrays = {"audio": np.ones((4, 1, 576), np.float32), "state": np.zeros((2, 1, 128), np.float32),
              "sr": np.array(8000, np.int64)}
    np.savez(tmp_path / "mixed.npz", **arrays)
    ds = load_data(tmp_path / "mixed.npz", VAD)
    assert len(ds) == 4 and all(int(s["sr"]) == 8000 for s in ds.samples)
    assert "state, sr the same for every sample" in ds.info["feeds"]


def test_rows_of_a_free_batch_are_samples_as_before(tmp_path):
    np.savez(tmp_path / "rows.npz", x=np.ones((6, 16), np.float32), labels=np.arange(6))
    ds = load_data(tmp_path / "rows.npz", MLP)
    assert len(ds) == 6 and ds.samples[0]["x"].shape == (1, 16) and list(ds.labels) == list(range(6))
    assert ds.info["feeds"] == "6 samples, one per row of x"


@pytest.mark.parametrize("arrays, message", [
    ({"audio": np.ones((3, 1, 576), np.float32), "state": np.zeros((2, 2, 1, 128), np.float32),
      "sr": np.array(16000, np.int64)}, "different sample counts"),
    ({"audio": np.ones((1, 500), np.float32), "state": np.zeros((2, 1, 128), np.float32),
      "sr": np.array(16000, np.int64)}, r"the model wants 2 dims \[1,576\] \(one feed\) or 3 with the samples"),
    ({"audio": np.ones((1, 576), np.float32), "state": np.zeros((2, 1, 128), np.float32),
      "sr": np.ones((2, 2), np.int64)}, "input 'sr' has shape"),
])
def test_arrays_that_fit_no_reading_are_refused_in_one_line(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(BadInput, match=message) as exc:
        load_data(tmp_path / "bad.npz", VAD)
    assert "\n" not in str(exc.value)


def _calls(folder, n=4, carry=True):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        np.savez(folder / f"call_{i:02d}.npz", audio=rng.standard_normal((1, 576)).astype(np.float32),
                 state=np.zeros((2, 1, 128), np.float32), sr=np.array(16000, np.int64))
    if carry:
        (folder / "carry.json").write_text(json.dumps({"state": "new_state"}))
    return folder


def test_a_folder_of_npz_files_is_a_stateful_models_calls_with_the_state_carried(tmp_path):
    ds = load_data(_calls(tmp_path / "calls"), VAD)
    assert len(ds) == 4 and ds.carry == {"state": "new_state"}
    assert ds.info["feeds"] == "4 calls from 4 .npz files in name order; carried: new_state → state"

    def step(feeds):  # a stand-in for the model: the new state counts the calls
        return {"prob": np.ones((1, 1), np.float32), "new_state": feeds["state"] + 1.0}

    fed, outs = run_carrying(ds.samples, step, ds.carry)
    assert [float(f["state"].max()) for f in fed] == [0.0, 1.0, 2.0, 3.0]
    assert float(outs[-1]["new_state"].max()) == 4.0
    assert float(ds.samples[1]["state"].max()) == 0.0  # the data itself is left as given


def test_carry_naming_what_the_model_lacks_is_refused(tmp_path):
    folder = _calls(tmp_path / "calls", carry=False)
    (folder / "carry.json").write_text(json.dumps({"hidden": "new_state"}))
    with pytest.raises(BadInput, match="carries into hidden, not inputs of the model"):
        load_data(folder, VAD)
    (folder / "carry.json").write_text(json.dumps({"state": "h_n"}))
    ds = load_data(folder, VAD)
    with pytest.raises(BadInput, match=r"carry\.json names output"):
        run_carrying(ds.samples, lambda f: {"new_state": f["state"]}, ds.carry)
