"""The caller numbers the engine classifies on arrival are kept for the numbers that call
again (issue 23): the kept answer is classify's, for every kind of number."""

from __future__ import annotations

from cti.engine.screen_pop import CALLER_NUMBERS_KEPT, classify_caller
from cti.phone import classify

NUMBERS = ("13800138000", "+86 138 0013 8000", "010-1234 5678", "P", "", "12", "abc", "0044 20")


def test_a_kept_classification_is_classifys_own() -> None:
    classify_caller.cache_clear()
    for region in ("CN", "GB"):
        for number in NUMBERS:
            assert classify_caller(number, region) == classify(number, region)
            assert classify_caller(number, region) == classify(number, region)  # kept
    info = classify_caller.cache_info()
    assert info.hits == info.misses == 2 * len(NUMBERS)
    assert info.maxsize == CALLER_NUMBERS_KEPT  # bounded: a flood of numbers evicts
