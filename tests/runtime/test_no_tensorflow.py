"""Rule 3: importing any runtime module never loads TensorFlow or Keras, nor the training or
export packages (imports point from train/export to the runtime, never back)."""
import json
import subprocess
import sys

PROBE = r"""
import importlib, json, pkgutil, sys
import har_runtime
names = [m.name for m in pkgutil.walk_packages(har_runtime.__path__, "har_runtime.")]
for name in names:
    importlib.import_module(name)
heavy = sorted(m for m in sys.modules
               if m.split(".")[0] in {"tensorflow", "keras", "tf_keras", "har_train", "har_export"})
print(json.dumps({"modules": names, "heavy": heavy, "file": har_runtime.__file__}))
"""


def test_runtime_modules_import_without_tensorflow_or_keras():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert "har_runtime.cli" in report["modules"]
    assert "har_runtime.daemon.server" in report["modules"]
    assert "har_runtime.contract.spec" in report["modules"]
    assert report["heavy"] == []
