"""Augmentation: rotations are rotations, shared by all sensor triads, bounded and seeded."""
import numpy as np
import pytest

pytest.importorskip("keras")

from har_train.augment import (NO_AUGMENT, AugmentConfig, WindowFeeder,  # noqa: E402
                               augment_batch, random_rotations, rotate, triads)

pytestmark = pytest.mark.tf

SIX = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")


def _angles_deg(r):
    return np.degrees(np.arccos(np.clip((np.trace(r, axis1=1, axis2=2) - 1) / 2, -1, 1)))


def test_random_rotations_are_proper_and_bounded(rng):
    r = random_rotations(rng, 500, 20.0)
    np.testing.assert_allclose(r @ r.transpose(0, 2, 1), np.broadcast_to(np.eye(3), r.shape),
                               atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-12)
    angles = _angles_deg(r)
    assert angles.max() <= 20.0 + 1e-6 and angles.max() > 15.0


def test_rotation_preserves_norms_and_the_angle_between_acc_and_gyro(rng):
    x = rng.normal(size=(8, 32, 6)).astype(np.float32)
    out = rotate(x, random_rotations(rng, 8, 45.0), triads(SIX))
    for idx in ([0, 1, 2], [3, 4, 5]):
        np.testing.assert_allclose(np.linalg.norm(out[:, :, idx], axis=2),
                                   np.linalg.norm(x[:, :, idx], axis=2), rtol=1e-5)
    dots = (x[:, :, :3] * x[:, :, 3:]).sum(axis=2)
    np.testing.assert_allclose((out[:, :, :3] * out[:, :, 3:]).sum(axis=2), dots, atol=1e-4)
    assert not np.allclose(out, x)


def test_triads_find_every_three_axis_group():
    assert triads(SIX) == [[0, 1, 2], [3, 4, 5]]
    assert triads(("body_acc_x", "body_acc_y", "body_acc_z", "gravity_x", "gravity_y",
                   "gravity_z")) == [[0, 1, 2], [3, 4, 5]]
    assert triads(("acc_x", "acc_y")) == []


def test_augment_batch_is_deterministic_per_seed(rng):
    x = rng.normal(size=(16, 32, 3)).astype(np.float32)
    cfg, std = AugmentConfig(10.0, 0.1, 0.05), np.ones(3)
    a = augment_batch(x, np.random.default_rng(7), cfg, triads(SIX[:3]), std)
    b = augment_batch(x, np.random.default_rng(7), cfg, triads(SIX[:3]), std)
    c = augment_batch(x, np.random.default_rng(8), cfg, triads(SIX[:3]), std)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert a.dtype == np.float32


def test_bad_strengths_are_refused():
    with pytest.raises(ValueError):
        AugmentConfig(-1.0, 0.1, 0.05)
    with pytest.raises(ValueError):
        AugmentConfig(5.0, 1.5, 0.05)


def _feeder(seed, config=AugmentConfig(5.0, 0.05, 0.05), weights=None):
    data = np.random.default_rng(0)
    x = data.normal(size=(50, 16, 6)).astype(np.float32)
    y = np.arange(50) % 3
    return x, y, WindowFeeder(x, y, 3, 16, seed, SIX, config, weights)


def test_feeder_batches_are_seeded_one_hot_and_cover_the_epoch():
    x, y, feeder = _feeder(5)
    _, _, again = _feeder(5)
    assert len(feeder) == 4
    bx, by = feeder[0]
    np.testing.assert_array_equal(bx, again[0][0])
    assert by.shape == (16, 3) and np.all(by.sum(axis=1) == 1)
    labels = np.concatenate([feeder[i][1].argmax(axis=1) for i in range(len(feeder))])
    assert np.array_equal(np.sort(labels), np.sort(y))
    first = feeder[0][0]
    feeder.on_epoch_end()
    assert not np.allclose(feeder[0][0][:1], first[:1])


def test_feeder_without_augmentation_returns_the_windows_unchanged():
    x, _, feeder = _feeder(3, NO_AUGMENT, weights=np.arange(50, dtype=float))
    bx, by, bw = feeder[1]
    rows = feeder._order[16:32]
    np.testing.assert_array_equal(bx, x[rows])
    np.testing.assert_array_equal(bw, rows.astype(np.float32))
