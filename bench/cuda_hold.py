"""Hold 1 GiB of GPU memory in a real CUDA context, for the processes check.

Only ctypes and the driver's libcuda.so.1 (no CUDA toolkit, no framework): cuInit,
cuCtxCreate, cuMemAlloc. Prints "ready <pid>" once the memory is allocated, then sleeps
SECONDS (default 60) and exits, freeing everything.
"""

from __future__ import annotations

import ctypes
import os
import sys
import time


def check(result: int, what: str) -> None:
    if result != 0:
        raise SystemExit(f"{what} failed with CUresult {result}")


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    cuda = ctypes.CDLL("libcuda.so.1")
    check(cuda.cuInit(0), "cuInit")
    device = ctypes.c_int()
    check(cuda.cuDeviceGet(ctypes.byref(device), 0), "cuDeviceGet")
    context = ctypes.c_void_p()
    check(cuda.cuCtxCreate_v2(ctypes.byref(context), 0, device), "cuCtxCreate")
    pointer = ctypes.c_uint64()
    check(cuda.cuMemAlloc_v2(ctypes.byref(pointer), 1 << 30), "cuMemAlloc (1 GiB)")
    print(f"ready {os.getpid()}", flush=True)
    time.sleep(seconds)


if __name__ == "__main__":
    main()
