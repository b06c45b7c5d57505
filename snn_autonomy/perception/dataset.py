"""Datasets of (event frames, label) generated from the built-in world.

Each seed builds its own arena layout (inner walls and static obstacles drawn from
the seed) on top of a world file, drops four robots that wander (scripted, from
ground truth, bold enough to come close to things) and records every robot's
event camera. Every `sample_period_ms` each robot yields one sample: the last
`t_max` bins of `bin_us` of its events, pooled onto the model's input grid
(T, 2, H, W) as uint8 counts, labelled from ground truth at the window's end.
Splits use disjoint seeds, hence disjoint layouts. Generation is deterministic
and cached by the hash of its specification.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections import deque
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Deque, Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np

from ..config import spec, to_dict
from ..events.batch import EventBatch
from ..events.representations import binned_frames
from ..events.roi import Roi
from ..paths import cache_root
from ..sensors.world_camera import WorldCamera
from ..sim.config import ArenaConfig, MovingObstaclesConfig, WallConfig, WorldConfig, load_world_config
from ..sim.ground_truth import range_scan
from ..sim.wander import WanderDriver
from ..sim.world import World
from .labels import CLASSES, LabelConfig, ambiguous, label_from_scan, sector_minima
from .sectors import sector_count, sector_scan

META_YAW_START, META_YAW_END = 8, 9    # meta columns of the robot's heading over a sample's window
META_SPEED_START, META_SPEED_END = 10, 11    # ... and its forward speed then (m/s, odometry)
META_COLUMNS = 12
SPLIT_SEEDS = {"train": tuple(range(101, 117)), "val": (201, 202, 203, 204), "test": (301, 302, 303, 304)}


@dataclass(frozen=True)
class InputSpec:
    """How events become the model's input (stored in the model manifest)."""

    sensor: Tuple[int, int] = (128, 96)
    grid: Tuple[int, int] = spec((64, 48), lo=1, hi=4096, unit="px", help="input grid W H (the ROI pooled onto it)")
    bin_us: int = spec(6000, lo=100, hi=1_000_000, unit="us")
    t_max: int = spec(16, lo=1, hi=1000, help="time steps (bins) of one decision at most")


@dataclass(frozen=True)
class MoverVariety:
    """What the training splits draw afresh per seed for the world's moving obstacles, so the
    model learns crossings faster, nearer and more crowded than one world file's: how many
    there are, and the ranges each one's radius and speed are drawn from (the world draws each
    obstacle's within them). 1 m/s is a brisk walk; the built-in world's movers are 0.15-0.45."""

    count: Tuple[int, int] = spec((3, 9), lo=0, hi=200, help="moving obstacles per seed, uniform range")
    radius_m: Tuple[float, float] = spec((0.1, 0.45), lo=0.02, hi=5.0, unit="m")
    speed_mps: Tuple[float, float] = spec((0.1, 1.0), lo=0.0, hi=20.0, unit="m/s")

    def movers_for(self, base: MovingObstaclesConfig, rng: np.random.Generator) -> MovingObstaclesConfig:
        """`base` (its textures and heights kept) with a count drawn from `rng` and these ranges."""
        return replace(base, count=int(rng.integers(self.count[0], self.count[1] + 1)),
                       radius_m=self.radius_m, speed_mps=self.speed_mps)


# The training and validation splits see more varied movers than the world file's; the test
# split keeps the world's own, so its figures describe that world.
VARIED_SPLITS = ("train", "val")


@dataclass(frozen=True)
class DatasetSpec:
    world: str = ""                      # world YAML ('' = the shipped default)
    seeds: Tuple[int, ...] = SPLIT_SEEDS["train"]
    duration_s: float = spec(40.0, lo=0.1, hi=3600.0, unit="s", help="simulated seconds of data per seed")
    robots: int = 4
    sample_period_ms: float = 50.0
    warmup_s: float = 0.5                # no samples before the cameras have history
    label: LabelConfig = field(default_factory=LabelConfig)
    inputs: InputSpec = field(default_factory=InputSpec)
    sectors: int = spec(0, lo=0, hi=64, help="sectors whose nearest range is recorded (sector labels); 0: one "
                                             "per 10 deg of the camera's field of view")
    randomize_layout: bool = True
    movers: Optional[MoverVariety] = None  # None: the world file's moving obstacles
    generator_version: int = 12          # bump when generation changes, so caches are not reused (12: inner walls 0.1 m thick)

    def key(self) -> str:
        """The cache key: this spec with the world it names by content, not by path (an edited
        world file, or the file it extends, makes new data; the same file named two ways does not)."""
        doc = {**to_dict(self), "world": to_dict(load_world_config(self.world or None))}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Dataset:
    x: np.ndarray          # (N, T, 2, H, W) uint8 event counts
    y: np.ndarray          # (N,) int64 class index
    approaching: np.ndarray  # (N,) uint8
    meta: np.ndarray       # (N, 12) float64: seed, robot, t_us, nearest_m, left_m, centre_m, right_m, ttc_s,
    #                        yaw (rad) and forward speed (m/s) at the window's start and end, as odometry
    #                        reports them (NaN where unknown): META_* above
    sector_m: np.ndarray   # (N, S) float32: nearest range per sector of DatasetSpec.sectors, left to right

    def ambiguous(self, cfg: LabelConfig) -> np.ndarray:
        """Samples whose label ground truth cannot settle cleanly (see labels.ambiguous)."""
        return np.array([ambiguous(row[4:7], cfg) for row in self.meta], dtype=bool)

    def __len__(self) -> int:
        return len(self.y)

    def take(self, idx: np.ndarray) -> "Dataset":
        return Dataset(self.x[idx], self.y[idx], self.approaching[idx], self.meta[idx], self.sector_m[idx])

    @staticmethod
    def concatenate(parts: List["Dataset"]) -> "Dataset":
        return Dataset(*(np.concatenate([getattr(p, f) for p in parts])
                         for f in ("x", "y", "approaching", "meta", "sector_m")))

    def class_balance(self) -> Dict[str, int]:
        counts = np.bincount(self.y, minlength=len(CLASSES))
        return {name: int(c) for name, c in zip(CLASSES, counts)}


def layout_for_seed(base: WorldConfig, seed: int, robots: int, randomize: bool,
                    movers: Optional[MoverVariety] = None) -> WorldConfig:
    """The base world with, where `randomize`, a layout drawn from `seed` (0-2 inner walls and
    2-6 pillars), and with `movers`, its moving obstacles drawn from the same seed."""
    rng = np.random.default_rng(seed)
    cfg = replace(base, seed=int(seed), robots=replace(base.robots, count=robots, start_poses=[]))
    arena = _drawn_layout(cfg.arena, rng) if randomize else cfg.arena
    if movers is not None:
        arena = replace(arena, moving_obstacles=movers.movers_for(arena.moving_obstacles, rng))
    return replace(cfg, arena=arena)


def _drawn_layout(arena: ArenaConfig, rng: np.random.Generator) -> ArenaConfig:
    """`arena` with 0-2 inner walls from its edges and 2-6 random pillars in place of its own."""
    w, h = arena.size_m
    walls: List[WallConfig] = []
    for _ in range(int(rng.integers(0, 3))):
        if rng.random() < 0.5:
            x = float(rng.uniform(0.3, 0.7) * w)
            y0 = 0.0 if rng.random() < 0.5 else h
            walls.append(WallConfig(start=(x, y0), end=(x, y0 + (1 if y0 == 0 else -1) * rng.uniform(0.25, 0.4) * h)))
        else:
            y = float(rng.uniform(0.3, 0.7) * h)
            x0 = 0.0 if rng.random() < 0.5 else w
            walls.append(WallConfig(start=(x0, y), end=(x0 + (1 if x0 == 0 else -1) * rng.uniform(0.25, 0.4) * w, y)))
    return replace(arena, walls=walls, static_obstacles=[], random_static_obstacles=int(rng.integers(2, 7)))


def _drivers(world: World, robots: int, seed: int) -> List[WanderDriver]:
    """Varied scripted drivers: speeds, turning distances and how much they meander are drawn
    per robot. Half are bold (turn late) so that obstacles straight ahead are well represented;
    some drive long straight runs across open floor, as a robot under its own control does."""
    rng = np.random.default_rng(seed * 31 + 5)
    out = []
    for i in range(robots):
        avoid = rng.uniform(0.3, 0.5) if i % 2 == 0 else rng.uniform(0.6, 0.9)
        out.append(WanderDriver(world, i, cruise_mps=float(rng.uniform(0.25, 0.6)), avoid_m=float(avoid),
                                drift_std=float(rng.choice([0.2, 0.6, 1.2])), seed=seed))
    return out


def drive_seed(ds: DatasetSpec, seed: int) -> Iterator[Tuple[World, List[Optional[EventBatch]]]]:
    """The wandering drive of one seed, step by step: the world after each step and each robot's
    new events (None where its camera took no frame this step)."""
    base = load_world_config(ds.world or None)
    world = World(layout_for_seed(base, seed, ds.robots, ds.randomize_layout, ds.movers))
    cams = [WorldCamera(world, i) for i in range(ds.robots)]
    drivers = _drivers(world, ds.robots, seed)
    next_control = 0
    for _ in range(int(ds.duration_s * 1e6 / world.dt_us)):
        if world.time_us >= next_control:
            for i, d in enumerate(drivers):
                world.set_command(i, *d.command())
            next_control = world.time_us + 20_000
        world.step()
        yield world, [cam.capture() if cam.frame_due() else None for cam in cams]


def _samples_for_seed(args: Tuple[DatasetSpec, int]) -> Tuple[np.ndarray, ...]:
    ds, seed = args
    inp = ds.inputs
    window_us = inp.bin_us * inp.t_max
    history: List[List[EventBatch]] = [[] for _ in range(ds.robots)]
    motion: Deque[Tuple[int, np.ndarray, np.ndarray]] = deque()    # (time, every robot's yaw, speed) over the window
    xs, ys, app, meta, sectors = [], [], [], [], []
    period_us = int(ds.sample_period_ms * 1000)
    next_sample = int(ds.warmup_s * 1e6)
    for world, batches in drive_seed(ds, seed):
        motion.append((world.time_us, world.pose[:, 2].copy(), world.vel[:, 0].copy()))
        for i, b in enumerate(batches):
            if b is not None and len(b):
                history[i].append(b)
        if world.time_us >= next_sample:
            t_end = world.time_us
            t0 = t_end - window_us
            while len(motion) > 1 and motion[1][0] <= t0:
                motion.popleft()
            (_, yaw0, v0), (_, yaw1, v1) = motion[0], motion[-1]
            for i in range(ds.robots):
                history[i] = [b for b in history[i] if b.t_last >= t0]
                batch = EventBatch.concatenate(history[i]) if history[i] else EventBatch.empty(*inp.sensor)
                frames = binned_frames(batch, t0 + 1, inp.bin_us, inp.t_max, out_size=inp.grid,
                                       roi=Roi.full(world.cfg.camera.width, world.cfg.camera.height))
                scan = range_scan(world, i, n_rays=ds.label.rays)
                lab = label_from_scan(scan, ds.label)
                xs.append(np.minimum(frames, 255).astype(np.uint8))
                ys.append(lab.cls)
                app.append(lab.approaching)
                meta.append((seed, i, t_end, lab.nearest_m, *lab.sector_m, lab.ttc_s,
                             yaw0[i], yaw1[i], v0[i], v1[i]))
                count = ds.sectors or sector_count(world.cfg.camera.hfov_deg)
                sectors.append(sector_minima(sector_scan(world, i, count), count))
            next_sample = world.time_us + period_us
    return (np.stack(xs), np.array(ys, dtype=np.int64), np.array(app, dtype=np.uint8),
            np.array(meta, dtype=np.float64), np.array(sectors, dtype=np.float32))


def cache_dir() -> Path:
    path = cache_root() / "datasets"
    path.mkdir(parents=True, exist_ok=True)
    return path


def generate(ds: DatasetSpec, workers: int = 0, progress: Optional[Callable[[int, int], None]] = None,
             use_cache: bool = True) -> Dataset:
    """Generate (or load from the cache) the dataset of `ds`; one process per seed, in parallel."""
    return generate_all({"data": ds}, workers, progress, use_cache)["data"]


def generate_all(specs: Dict[str, DatasetSpec], workers: int = 0,
                 progress: Optional[Callable[[int, int], None]] = None,
                 use_cache: bool = True) -> Dict[str, Dataset]:
    """Generate (or load from the cache) several datasets at once. The seeds of every dataset not
    in the cache share one pool of processes, so a machine with more cores than one split has
    seeds stays busy (the training, validation and test splits: 24 seeds, 16 of them training)."""
    paths = {name: cache_dir() / f"{ds.key()}.npz" for name, ds in specs.items()}
    with cache_locks(paths.values()) if use_cache else nullcontext():
        return _load_or_generate(specs, paths, workers, progress, use_cache)


@contextmanager
def cache_locks(paths: Iterable[Path]) -> Iterator[None]:
    """Hold an exclusive lock beside each cached file: a process that wants a dataset another
    one is making waits for it and loads it, rather than making it again (on two cores, two test
    workers doing so each took twice as long). Taken in sorted order, so two processes that
    want overlapping sets cannot hold one each and wait on the other."""
    with ExitStack() as stack:
        for path in sorted(set(paths)):
            fh = stack.enter_context(open(path.with_suffix(".lock"), "w"))
            fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _load_or_generate(specs: Dict[str, DatasetSpec], paths: Dict[str, Path], workers: int,
                      progress: Optional[Callable[[int, int], None]], use_cache: bool) -> Dict[str, Dataset]:
    out: Dict[str, Dataset] = {}
    for name, path in paths.items():
        if use_cache and path.exists():
            with np.load(path) as z:
                if z["meta"].shape[1] == META_COLUMNS:     # older caches lack headings or speeds: made again
                    out[name] = Dataset(z["x"], z["y"], z["approaching"], z["meta"], z["sector_m"])
    jobs = [(specs[name], s) for name in specs if name not in out for s in specs[name].seeds]
    workers = workers or min(len(jobs), os.cpu_count() or 1)
    parts = []
    if workers <= 1:
        for k, job in enumerate(jobs):
            parts.append(_samples_for_seed(job))
            if progress:
                progress(k + 1, len(jobs))
    elif jobs:
        with get_context("spawn").Pool(workers) as pool:
            for k, part in enumerate(pool.imap(_samples_for_seed, jobs)):
                parts.append(part)
                if progress:
                    progress(k + 1, len(jobs))
    for name in (n for n in specs if n not in out):
        mine, parts = parts[:len(specs[name].seeds)], parts[len(specs[name].seeds):]
        data = out[name] = Dataset(*(np.concatenate([p[i] for p in mine]) for i in range(5)))
        if use_cache:
            tmp = paths[name].with_suffix(f".{os.getpid()}.tmp.npz")    # never a half-written cache file
            np.savez_compressed(tmp, x=data.x, y=data.y, approaching=data.approaching, meta=data.meta,
                                sector_m=data.sector_m)
            tmp.replace(paths[name])
    return {name: out[name] for name in specs}


def input_spec_of(manifest: dict) -> InputSpec:
    """The InputSpec a model was trained with, from its manifest ("input")."""
    d = dict(manifest.get("input", {}))
    for k in ("sensor", "grid"):
        if k in d:
            d[k] = tuple(d[k])
    return InputSpec(**d)


def split_spec(split: str, world: str = "", **overrides) -> DatasetSpec:
    """The dataset spec of a named split (train / val / test) of a world."""
    if split not in SPLIT_SEEDS:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLIT_SEEDS)}")
    movers = MoverVariety() if split in VARIED_SPLITS else None
    return replace(DatasetSpec(world=world, seeds=SPLIT_SEEDS[split], movers=movers), **overrides)
