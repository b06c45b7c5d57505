"""Load (or compile) every numba kernel of the sensing path before real data flows.

A node that compiled its kernels on its first real frame would stall for a
moment and miss input meanwhile; nodes call `warm_up()` while they configure.
"""
from __future__ import annotations

import numpy as np

from ..events.batch import EventBatch
from ..events.codec import SUPPORTED, encode, make_decoder
from .dvs import DvsConfig, DvsEmulator


def warm_up(world=None, robot: int = 0) -> None:
    em = DvsEmulator(4, 4, DvsConfig(shot_noise_rate_hz=1e5))
    em.feed(np.full((4, 4), 0.2, dtype=np.float32), 0)
    batch = em.feed(np.full((4, 4), 0.8, dtype=np.float32), 1000)
    for enc in SUPPORTED:
        make_decoder(enc, 4, 4).decode(encode(batch if len(batch) else EventBatch.empty(4, 4), enc))
    if world is not None:
        world.render(robot)
