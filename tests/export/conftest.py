"""Shared fixtures for the export tests: one tiny trained run and one converted bundle."""
import pytest
from click.testing import CliRunner


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A run folder with a freshly trained ~1.6 k-parameter model on synthetic:0."""
    pytest.importorskip("keras")
    from scripts.tiny_run import make_tiny_run

    return make_tiny_run(tmp_path_factory.mktemp("run") / "run", epochs=30)


@pytest.fixture(scope="session")
def converted(tiny_run, tmp_path_factory):
    """(CliRunner result, bundle path) of `har-export convert` with every variant + C array."""
    from har_export.cli import cli

    out = tmp_path_factory.mktemp("bundle") / "bundle"
    result = CliRunner().invoke(cli, ["convert", str(tiny_run / "model.keras"), "--out", str(out),
                                      "--c-array", "--calibration-size", "256"])
    return result, out
