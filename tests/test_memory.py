"""The allocator setting behind a training step's speed (bpcli.engine.memory)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from bpcli.engine.memory import MMAP_THRESHOLD, keep_freed_memory

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")

# how many bytes glibc serves by mmap (mallinfo2's hblkhd) before and after a 16 MiB array
PROBE = """
import ctypes, sys
import numpy as np
from bpcli.engine.memory import keep_freed_memory
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena ordblks smblks hblks hblkhd usmblks "
                                                "fsmblks uordblks fordblks keepcost").split()]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "keep":
    keep_freed_memory()
before = libc.mallinfo2().hblkhd
a = np.ones(2 << 20)   # 16 MiB
print(libc.mallinfo2().hblkhd - before)
"""


def mapped_for_a_16_mib_array(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                         check=True).stdout
    return int(out)


@glibc
def test_big_temporaries_come_from_the_heap_once_the_thresholds_are_fixed():
    assert mapped_for_a_16_mib_array("default") >= 16 << 20     # glibc maps it, by default
    assert mapped_for_a_16_mib_array("keep") == 0               # reused heap, no mmap/munmap
    assert 16 << 20 < MMAP_THRESHOLD


@glibc
def test_the_setting_is_accepted_by_glibc():
    assert keep_freed_memory() is True
