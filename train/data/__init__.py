"""Readers that turn data sets into `Recording`s for training (numpy-only, no Keras).

`sources.load_recordings(SOURCE)` is the one grammar that names a data source (hapt, uci:DIR,
csv:PATH, synthetic[:SEED]); `hapt` reads the embedded HAPT pickle through `safe_pickle`'s
restricted unpickler, `uci` a UCI HAR folder, `synthetic` makes seeded test recordings.
"""
