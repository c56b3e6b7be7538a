"""Lab tools of har-edge, run from the repository root as `python -m scripts.NAME`.

Not part of the installed product (setup.cfg does not package them): the benchmark
(scripts.bench), the leaderboard (scripts.leaderboard), export and smoothing studies
(int8_agreement, tune_smoothing, replay_eval), the learned-context study (context_eval), the
golden test bundle (make_golden_bundle, tiny_run) and the MQTT fleet benchmark (fleet_bench).
Importing this package imports only pathlib, so every venv a worker runs in can.
"""
from pathlib import Path

#: The repository root: tools start their worker processes there (`python -m scripts...`
#: finds this package from it) and find docs/ and tests/data_golden/ under it.
REPO = Path(__file__).resolve().parent.parent
