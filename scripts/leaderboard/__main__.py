"""`python -m scripts.leaderboard`: see scripts.leaderboard.cli."""
import os

# Before anything imports Keras or TensorFlow (the training steps do, lazily).
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from scripts.leaderboard.cli import main  # noqa: E402

main()
