import numpy as np
import pytest
import torch

from regularizers import (
    average_similarity,
    load_recordings,
    load_scan,
    neural_similarity,
    save_recording,
)

RNG = np.random.default_rng(0)
N, NEURONS, R, H, W = 12, 7, 3, 5, 6


def arrays(**over):
    base = {
        "responses": RNG.normal(size=(N, NEURONS)).astype(np.float32),
        "repeats": RNG.normal(size=(R, N, NEURONS)).astype(np.float32),
        "images": RNG.integers(0, 256, size=(N, H, W), dtype=np.uint8),
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def write(tmp_path, name, data):
    path = tmp_path / name
    np.savez(path, **data)
    return str(path)


def test_round_trip_with_images(tmp_path):
    data = arrays()
    path = str(tmp_path / "scan.npz")
    save_recording(path, data["responses"], repeats=data["repeats"], images=data["images"])
    rec = load_recordings(path)
    assert rec.files == [path] and rec.num_images == N
    scan = rec.scans[0]
    np.testing.assert_array_equal(scan.responses.numpy(), data["responses"])
    np.testing.assert_array_equal(scan.repeats.numpy(), data["repeats"])
    assert rec.images.shape == (N, 1, H, W) and rec.images.dtype == torch.float32
    np.testing.assert_allclose(rec.images[:, 0].numpy(), data["images"] / 255.0, atol=1e-7)
    want = neural_similarity(torch.from_numpy(data["responses"]), torch.from_numpy(data["repeats"]))
    assert torch.allclose(rec.similarity(), want)
    assert torch.equal(rec.resolve_images(), rec.images)


def test_float_images_and_ids(tmp_path):
    imgs = RNG.random(size=(N, H, W)).astype(np.float32)
    rec = load_recordings(write(tmp_path, "a.npz", arrays(images=imgs)))
    np.testing.assert_array_equal(rec.images[:, 0].numpy(), imgs)
    ids = np.arange(N)[::-1].copy() * 2
    rec = load_recordings(write(tmp_path, "b.npz", arrays(images=None, image_ids=ids)), num_train_images=30)
    assert rec.images is None and rec.image_ids.tolist() == ids.tolist()
    train = torch.rand(30, 3, 4, 4)
    assert torch.equal(rec.resolve_images(train), train[torch.from_numpy(ids)])
    with pytest.raises(ValueError, match=r"ids in \[0, 20\)"):
        rec.resolve_images(train[:20])
    with pytest.raises(ValueError, match="pass the training images"):
        rec.resolve_images()


def test_several_scans_average_their_similarities(tmp_path):
    imgs = RNG.integers(0, 256, size=(N, H, W), dtype=np.uint8)
    a = arrays(images=imgs)
    b = arrays(images=imgs, responses=RNG.normal(size=(N, 4)), repeats=RNG.normal(size=(2, N, 4)))
    rec = load_recordings([write(tmp_path, "a.npz", a), write(tmp_path, "b.npz", b)])
    want = average_similarity(
        [
            neural_similarity(torch.from_numpy(a["responses"]), torch.from_numpy(a["repeats"])),
            neural_similarity(torch.from_numpy(b["responses"]).float(), torch.from_numpy(b["repeats"]).float()),
        ]
    )
    assert torch.allclose(rec.similarity(), want, atol=1e-6)
    assert not torch.allclose(rec.similarity(), rec.scans[0].similarity())
    assert [s.num_neurons for s in rec.scans] == [NEURONS, 4]


def test_repeats_of_a_subset_with_repeat_image_index(tmp_path):
    data = arrays(repeats=RNG.normal(size=(4, 5, NEURONS)), repeat_image_index=np.array([0, 2, 4, 6, 8]))
    rec = load_recordings(write(tmp_path, "oracle.npz", data))
    assert rec.scans[0].repeat_image_index.tolist() == [0, 2, 4, 6, 8]
    assert rec.similarity().shape == (N, N)


NAN_RESP = RNG.normal(size=(N, NEURONS))
NAN_RESP[3, 2] = np.nan
INF_REP = RNG.normal(size=(R, N, NEURONS))
INF_REP[0, 0, 0] = np.inf


@pytest.mark.parametrize(
    "over, match",
    [
        ({"responses": None}, "missing required key 'responses'"),
        ({"responses": RNG.normal(size=(N,))}, "key 'responses': expected 2-D array"),
        ({"responses": NAN_RESP}, "key 'responses': expected finite values, got 1 NaN/inf"),
        ({"repeats": INF_REP}, "key 'repeats': expected finite values"),
        ({"repeats": RNG.normal(size=(R, N))}, "key 'repeats': expected 3-D"),
        ({"repeats": RNG.normal(size=(R, N + 1, NEURONS))}, f"key 'repeats': expected {N} images"),
        ({"repeats": RNG.normal(size=(R, N, NEURONS + 2))}, f"key 'repeats': expected {NEURONS} neurons"),
        ({"repeats": RNG.normal(size=(1, N, NEURONS))}, "expected >= 2 repeats"),
        ({"images": RNG.integers(0, 255, size=(N - 1, H, W), dtype=np.uint8)}, f"key 'images': expected {N} images"),
        ({"images": RNG.integers(0, 255, size=(N, 1, H, W), dtype=np.uint8)}, "key 'images': expected 3-D"),
        ({"images": RNG.random(size=(N, H, W)) * 3}, r"key 'images': expected float values in \[0, 1\]"),
        ({"images": np.full((N, H, W), np.nan)}, "key 'images': expected finite"),
        ({"images": RNG.integers(0, 255, size=(N, H, W)).astype(np.int16)}, "key 'images': expected dtype"),
        ({"images": None}, "exactly one of 'images'"),
        ({"image_ids": np.arange(N)}, "exactly one of 'images' .* got both"),
        ({"images": None, "image_ids": np.arange(N) - 1}, r"key 'image_ids': expected ids in >= 0, got range \[-1"),
        ({"images": None, "image_ids": np.arange(N + 2)}, f"key 'image_ids': expected {N} ids"),
        ({"images": None, "image_ids": np.linspace(0, 1, N)}, "key 'image_ids': expected dtype"),
        ({"repeat_image_index": np.arange(3)}, "key 'repeat_image_index': expected 12 entries"),
        ({"repeats": RNG.normal(size=(R, 2, NEURONS)), "repeat_image_index": np.array([0, 40])},
         r"key 'repeat_image_index': expected indices in \[0, 12\)"),
        ({"repeats": None, "repeat_image_index": np.arange(N)}, "without 'repeats'"),
        ({"spikes": np.zeros(3)}, "unknown keys"),
    ],
)
def test_each_validation_error_names_file_key_and_expectation(tmp_path, over, match):
    path = write(tmp_path, "bad.npz", arrays(**over))
    with pytest.raises(ValueError, match=match) as err:
        load_scan(path)
    assert path in str(err.value)


def test_ids_out_of_range_for_the_training_set(tmp_path):
    path = write(tmp_path, "ids.npz", arrays(images=None, image_ids=np.arange(N) + 40))
    with pytest.raises(ValueError, match=r"key 'image_ids': expected ids in \[0, 50\), got range \[40, 51\]"):
        load_recordings(path, num_train_images=50)
    assert load_recordings(path, num_train_images=60).num_images == N


def test_scans_must_show_the_same_images(tmp_path):
    a = write(tmp_path, "a.npz", arrays())
    b = write(tmp_path, "b.npz", arrays())  # different random images
    with pytest.raises(ValueError, match="b.npz: key 'images': expected the same images as .*a.npz"):
        load_recordings([a, b])
    c = write(tmp_path, "c.npz", arrays(responses=RNG.normal(size=(N - 2, NEURONS)), repeats=None,
                                         images=RNG.integers(0, 255, size=(N - 2, H, W), dtype=np.uint8)))
    with pytest.raises(ValueError, match=f"c.npz: key 'responses': expected {N} images"):
        load_recordings([a, c])
    d = write(tmp_path, "d.npz", arrays(images=None, image_ids=np.arange(N)))
    with pytest.raises(ValueError, match="identifies stimuli by image_ids"):
        load_recordings([a, d])
    e = write(tmp_path, "e.npz", arrays(images=None, image_ids=np.arange(N) + 1))
    with pytest.raises(ValueError, match="key 'image_ids': expected the same ids"):
        load_recordings([d, e])
    with pytest.raises(ValueError, match="at least one file"):
        load_recordings([])


def test_save_recording_validates_before_writing(tmp_path):
    path = tmp_path / "never.npz"
    with pytest.raises(ValueError, match="exactly one of"):
        save_recording(path, RNG.normal(size=(N, NEURONS)))
    assert not path.exists()
