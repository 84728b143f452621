"""The numeric instruction set is pinned before torch loads, so embeddings are the same on every AVX2 machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from services.numerics import cpu_has_avx2

PROBE = """
import json, sys
from services.numerics import pin_instruction_set
applied = pin_instruction_set(sys.argv[1])
import torch
print(json.dumps({"applied": applied, "capability": torch.backends.cpu.get_cpu_capability()}))
"""


def _probe(isa: str) -> dict:
    env = {name: value for name, value in os.environ.items() if name not in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "FAISS_OPT_LEVEL")}
    completed = subprocess.run([sys.executable, "-c", PROBE, isa], capture_output=True, text=True, env=env, timeout=120, check=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not cpu_has_avx2(), reason="this CPU has no AVX2: nothing to pin")
def test_avx2_pins_torch_before_it_loads_and_native_leaves_it_alone():
    pinned = _probe("avx2")
    assert pinned["capability"] == "AVX2"
    assert pinned["applied"] == {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "FAISS_OPT_LEVEL": "avx2"}
    native = _probe("native")
    assert native["applied"] == {}
