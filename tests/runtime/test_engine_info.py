"""An engine built for another TensorRT version or GPU is refused in one line before loading."""

from __future__ import annotations

import pytest

from adfl_deploy.errors import EngineError
from adfl_deploy.runtime.engine_info import EngineInfo, check_engine

ORIN_ENGINE = EngineInfo("model.engine", "10.3.0", "8.7", gpu="Orin")


@pytest.mark.parametrize(
    "engine, trt, cc, match",
    [
        (None, "10.3.0", "8.7", "no TensorRT engine"),
        (ORIN_ENGINE, None, "8.7", "not installed"),
        (ORIN_ENGINE, "11.1.0", "8.7", "built with TensorRT 10.3.0 but 11.1.0"),
        (ORIN_ENGINE, "10.3.0", None, "needs a CUDA GPU"),
        (ORIN_ENGINE, "10.3.0", "9.0", "compute capability 8.7 .*this GPU is 9.0"),
    ],
)
def test_mismatches_fail_in_one_line(engine, trt, cc, match):
    with pytest.raises(EngineError, match=match) as info:
        check_engine(engine, trt, cc)
    assert "\n" not in str(info.value)


def test_a_matching_engine_passes():
    check_engine(ORIN_ENGINE, "10.3.0", "8.7")
