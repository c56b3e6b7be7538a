"""Synthetic recordings: deterministic, labelled as documented, and separable across subjects."""
import numpy as np
import pytest

from har_train.data.synthetic import synthetic_recording, synthetic_recordings


def test_same_arguments_same_samples():
    a = synthetic_recordings(n_subjects=2, seed=5, seconds_per_activity=3, transitions=True)
    b = synthetic_recordings(n_subjects=2, seed=5, seconds_per_activity=3, transitions=True)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.acc, y.acc)
        np.testing.assert_array_equal(x.gyro, y.gyro)
        np.testing.assert_array_equal(x.labels, y.labels)


def test_seed_subject_and_session_change_the_samples():
    base = synthetic_recording(1, seconds_per_activity=3)
    for other in (synthetic_recording(1, seed=1, seconds_per_activity=3),
                  synthetic_recording(2, seconds_per_activity=3),
                  synthetic_recording(1, session=1, seconds_per_activity=3)):
        assert other.acc.shape == base.acc.shape
        assert not np.allclose(other.acc, base.acc, atol=0.05)


def test_plain_recording_is_the_activities_in_order():
    rec = synthetic_recording(4, seconds_per_activity=2, activities=(6, 1, 6), rate_hz=20)
    assert (rec.subject, rec.session, rec.rate_hz, rec.source) == (4, 0, 20.0, "synthetic")
    assert rec.labels.tolist() == [6] * 40 + [1] * 40 + [6] * 40
    assert rec.gyro.shape == (120, 3)
    assert synthetic_recording(4, seconds_per_activity=2, with_gyro=False).gyro is None


def test_transitions_are_labelled_with_hapt_ids():
    rec = synthetic_recording(2, seconds_per_activity=5, transitions=True,
                              activities=(5, 4, 6, 4, 5, 6, 5, 1))
    segments = [int(l) for i, l in enumerate(rec.labels) if i == 0 or l != rec.labels[i - 1]]
    assert segments == [-1, 5, 7, 4, 9, 6, 10, 4, 8, 5, 11, 6, 12, 5, -1, 1]
    assert np.count_nonzero(rec.labels == 7) >= 2.5 * 50  # long enough for a 60 % window
    turning = np.abs(rec.gyro[rec.labels == 9]).max()
    holding = np.abs(rec.gyro[rec.labels == 6]).max()
    assert turning > 3 * holding  # posture changes rotate the phone


def test_postures_differ_by_gravity_direction():
    rec = synthetic_recording(3, seconds_per_activity=5)
    means = {a: rec.acc[rec.labels == a].mean(axis=0) for a in (4, 5, 6)}
    for a, b in [(4, 5), (4, 6), (5, 6)]:
        cos = means[a] @ means[b] / np.linalg.norm(means[a]) / np.linalg.norm(means[b])
        assert np.degrees(np.arccos(cos)) > 25
    assert all(0.95 < np.linalg.norm(m) < 1.05 for m in means.values())  # gravity is 1 g


def _features(recording, window=128, hop=64):
    """Mean acc, magnitude spread and dominant frequency of each pure window."""
    rows, labels = [], []
    for start in range(0, len(recording) - window + 1, hop):
        lab = recording.labels[start:start + window]
        if (lab != lab[0]).any():
            continue
        acc = recording.acc[start:start + window]
        magnitude = np.linalg.norm(acc, axis=1)
        magnitude -= magnitude.mean()
        spectrum = np.abs(np.fft.rfft(magnitude, n=1024))
        peak = np.fft.rfftfreq(1024, 1 / recording.rate_hz)[spectrum.argmax()]
        rows.append(np.r_[acc.mean(axis=0), magnitude.std(), peak])
        labels.append(lab[0])
    return rows, labels


def test_activities_separate_on_unseen_subjects():
    """A nearest-centroid classifier on 5 accelerometer features, trained on other subjects."""
    data = [(_features(r), r.subject) for r in
            synthetic_recordings(n_subjects=8, seed=11, seconds_per_activity=15)]
    x = np.array([f for (rows, _), _ in data for f in rows])
    y = np.array([l for (_, labels), _ in data for l in labels])
    subject = np.array([s for (rows, _), s in data for _ in rows])
    train = subject <= 5
    mu, sd = x[train].mean(axis=0), x[train].std(axis=0)
    z = (x - mu) / sd
    classes = np.unique(y)
    centroids = np.stack([z[train & (y == c)].mean(axis=0) for c in classes])
    predicted = classes[np.argmin(((z[~train, None] - centroids) ** 2).sum(axis=2), axis=1)]
    assert set(classes) == {1, 2, 3, 4, 5, 6}
    assert np.mean(predicted == y[~train]) > 0.95


@pytest.mark.parametrize("kwargs, message", [
    ({"subject": -1}, ">= 0"),
    ({"subject": 1, "activities": (7,)}, "activities"),
    ({"subject": 1, "activities": ()}, "activities"),
    ({"subject": 1, "seconds_per_activity": 0}, "> 0"),
])
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        synthetic_recording(**kwargs)
