"""The instruction set the encoder and FAISS compute with.

torch picks its CPU kernels at run time (AVX-512 where the CPU has it, else AVX2), and so does oneDNN,
which runs the encoder's matrix products. The two paths round differently: the same texts embedded on
an AVX-512 machine and with the AVX2 kernels differ in the last bits (measured: every embedding of a
200-entity catalog), enough to break ties differently and send a simulation down another path on
another machine of the same kind. Pinning both to AVX2, which every x86-64-v3 CPU runs, gives the same
numbers on all of them. ``LTRR_NUMERIC_ISA=native`` lets each machine use its fastest kernels instead.

The variables are read when torch, oneDNN and FAISS load, so this runs before any of them is imported;
variables already set in the environment win.
"""

from __future__ import annotations

import logging
import os
import platform
import sys

logger = logging.getLogger(__name__)

AVX2_VARIABLES = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "FAISS_OPT_LEVEL": "avx2"}


def cpu_has_avx2() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            return any(line.startswith("flags") and " avx2" in line for line in cpuinfo)
    except OSError:
        return False


def pin_instruction_set(isa: str) -> dict[str, str]:
    """Set the variables that pin torch, oneDNN and FAISS to ``isa`` (``avx2`` or ``native``); returns
    what was set. Does nothing off x86-64, on a CPU without AVX2, or once torch or FAISS is loaded."""
    if isa == "native" or platform.machine() not in ("x86_64", "AMD64"):
        return {}
    loaded = [name for name in ("torch", "faiss") if name in sys.modules]
    if loaded:
        logger.warning("LTRR_NUMERIC_ISA=%s not applied: %s already loaded", isa, ", ".join(loaded))
        return {}
    if not cpu_has_avx2():
        logger.warning("LTRR_NUMERIC_ISA=avx2: this CPU has no AVX2; its numbers may differ from other machines'")
        return {}
    applied = {}
    for name, value in AVX2_VARIABLES.items():
        if name not in os.environ:
            os.environ[name] = value
            applied[name] = value
    return applied
