"""The preprocessing contract: what training, export and the device must compute identically.

Touch with care. Everything here is numpy-only and is imported by `har_train` (to make the
training windows), by `har_export` (to write the bundle's parameters) and by the device code in
`har_runtime` (to make the same windows from a live stream). A change here changes what every
saved model and bundle means: keep stream == batch bit for bit (tests/runtime), and bump
`bundle.SCHEMA_VERSION` when a bundle field's meaning changes.

- `spec`       PreprocessSpec: rate, window/hop, channels, units, labels (the one set of defaults)
- `units`      unit names and conversion factors (g, m/s², rad/s, deg/s)
- `labels`     the HAPT label ids and task label sets
- `recording`  Recording: one subject's continuous samples and per-sample labels
- `resample`   batch and streaming resampling onto the spec's rate, gap splitting
- `windowing`  batch and streaming windows, the window labelling rule
- `input_norm` the float standardisation applied before a model's input
- `smoothing`  the smoother over window probabilities and its settings
- `results`    typed results: Prediction, ActivityChange
- `tiers`      the deployment tiers a bundle can claim (mcu, pi) and their budgets
"""
