"""What the daemon serves: a classifier with its spec and smoothing, loaded from a bundle."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from har_runtime.bundle import BundleError, load_bundle
from har_runtime.contract.smoothing import SmoothingSettings
from har_runtime.contract.spec import PreprocessSpec
from har_runtime.interpreter import InterpreterUnavailableError
from har_runtime.stream import Classifier


class ModelLoadFailed(Exception):
    """The bundle could not be served; `kind` is "bundle" or "interpreter"."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Model:
    """A ready classifier plus everything needed to feed and smooth it."""

    spec: PreprocessSpec
    classifier: Classifier
    smoothing: SmoothingSettings
    description: str


@dataclass(frozen=True)
class SmoothingOverrides:
    """Command-line replacements for the bundle's smoothing defaults (None keeps the default)."""

    k: Optional[int] = None
    min_confidence: Optional[float] = None
    hysteresis: Optional[int] = None

    def apply(self, settings: SmoothingSettings) -> SmoothingSettings:
        """`settings` with every given override applied (validated by SmoothingSettings)."""
        given = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        return dataclasses.replace(settings, **given)


@dataclass(frozen=True)
class BundleModelLoader:
    """Loads (and on SIGHUP re-loads) the bundle at `path`; a callable returning a `Model`."""

    path: Path
    variant: Optional[str] = None
    interpreter: Optional[str] = None
    num_threads: int = 1
    overrides: SmoothingOverrides = SmoothingOverrides()

    def __call__(self) -> Model:
        try:
            bundle = load_bundle(self.path)
            classifier = bundle.open(self.variant, self.interpreter, self.num_threads)
            smoothing = self.overrides.apply(bundle.smoothing)
        except InterpreterUnavailableError as exc:
            raise ModelLoadFailed(str(exc), "interpreter") from None
        except (BundleError, OSError, ValueError) as exc:
            text = str(exc) if str(self.path) in str(exc) else f"{self.path}: {exc}"
            raise ModelLoadFailed(text, "bundle") from None
        name = self.variant or bundle.recommended
        return Model(bundle.spec, classifier, smoothing, f"{bundle.path} [{name}]")


ModelLoader = Callable[[], Model]
