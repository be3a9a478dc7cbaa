"""How the C allocator treats the large arrays a training step makes and frees every step.

A step allocates and frees the same big temporaries each time (im2col columns, activations,
their adjoints). glibc's malloc serves a block over its *mmap threshold* with ``mmap`` and
gives it back with ``munmap``, and moves that threshold as blocks are freed; depending on the
order of allocations, which changes with any edit of the engine, a step can end up mapping,
faulting in and unmapping tens of megabytes every time. Measured on 2 cores: 16.4 ms a step
for specs/image_cnn.yaml at batch 32, against 7.9 ms for the same code once the thresholds
are fixed (benchmarks/README.md). :func:`keep_freed_memory` fixes them, so freed memory is kept
for the next step instead of being returned to the system and faulted in again (the kernel
zeroes every page it hands out again); the memory stays at the run's peak, which it reaches
every step anyway. The largest threshold glibc allows is 32 MiB on 64-bit, and an imaging
network's activations are larger (32 × 16 × 128 × 128 float32 is 32 MiB): so ``mmap`` is not
used for blocks at all (``M_MMAP_MAX`` 0; glibc still maps memory where the heap cannot grow).
ReLU of such an array took 10.8 ms with the thresholds alone, 4.5 ms so; and threads writing
one fresh mapped array fight over the kernel's page-table lock, where heap memory is reused.

Called where a process starts to work (the command line, a sweep worker); a notebook that
imports bpcli keeps its own allocator settings unless it calls this.
"""

from __future__ import annotations

import ctypes
import functools
import platform

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4   # glibc's <malloc.h>
MMAP_THRESHOLD = 32 << 20      # glibc's largest (HEAP_MAX_SIZE / 2 on 64-bit)
TRIM_THRESHOLD = 1 << 30       # free memory at the heap's top kept up to this much


@functools.cache  # once a process: the setting lasts until it exits
def keep_freed_memory() -> bool:
    """Fix glibc's mmap and trim thresholds (module docstring); True if they were set, False
    where the C library is not glibc (nothing to do: other allocators do not thrash so)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                    and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
                    and libc.mallopt(M_MMAP_MAX, 0))
    except (OSError, AttributeError):
        return False
