"""Threshold overrides: every check but agreement can be switched off; agreement cannot."""
import pytest

from har_export.errors import OptionError
from har_export.parity import ParityThresholds


def test_agreement_cannot_be_switched_off():
    with pytest.raises(OptionError, match="min_agreement"):
        ParityThresholds().with_overrides(["int8.min_agreement=none"])


def test_other_checks_can_be_switched_off_or_changed():
    t = ParityThresholds().with_overrides(["int8.max_accuracy_drop=none",
                                           "float16.min_agreement=0.9"])
    assert t.gate("int8").max_accuracy_drop is None
    assert t.gate("float16").min_agreement == 0.9
