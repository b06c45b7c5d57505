"""CPU load for benchmarks: busy-loop processes, as stress-ng's cpu stressors, each bounded in time.

`CpuHog(n, seconds)` starts n processes that spin at normal priority, the k-th pinned to the k-th
CPU this process may use (so `n = 1` is "a hog on one core"), and stops them when the `with`
block ends. Each also stops by itself after `seconds`, so a benchmark that is killed does not
leave load behind.
"""
from __future__ import annotations

import os
import subprocess
import sys
from typing import List, Optional

_SPIN = ("import os, sys, time\n"
         "cpu = int(sys.argv[2])\n"
         "if cpu >= 0:\n"
         "    os.sched_setaffinity(0, {cpu})\n"
         "end = time.monotonic() + float(sys.argv[1])\n"
         "while time.monotonic() < end:\n"
         "    pass\n")


class CpuHog:
    def __init__(self, n: int, seconds: float = 3600.0, pin: bool = True) -> None:
        if n < 0:
            raise ValueError(f"the number of CPU hogs must be 0 or more, not {n}")
        self.n, self.seconds, self.pin = int(n), float(seconds), pin
        self.cpus: List[int] = []
        self._procs: List[subprocess.Popen] = []

    def start(self) -> "CpuHog":
        allowed = sorted(os.sched_getaffinity(0))
        for k in range(self.n):
            cpu = allowed[k % len(allowed)] if self.pin else -1
            self.cpus.append(cpu)
            self._procs.append(subprocess.Popen([sys.executable, "-c", _SPIN, str(self.seconds), str(cpu)]))
        return self

    def stop(self) -> None:
        for p in self._procs:
            p.kill()
            p.wait()
        self._procs = []

    def describe(self) -> Optional[str]:
        if not self.n:
            return None
        where = f"on CPU {', '.join(map(str, self.cpus))}" if self.pin else "unpinned"
        return f"{self.n} busy-loop process{'es' if self.n > 1 else ''} {where}, normal priority"

    def __enter__(self) -> "CpuHog":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
