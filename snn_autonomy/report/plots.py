"""PNG plots of a run: latency per stage, SNN steps per decision (early exit), energy per
decision over time, robot trajectories over the arena with their assigned regions."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .summary import RunData, collision_episodes


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_latency(run: RunData, path: Path) -> None:
    plt = _pyplot()
    stages: Dict[str, List[float]] = {}
    for ts in run.traces.values():
        for t in ts:
            stages.setdefault("e2e", []).append(t.e2e_latency_ms)
            for s in t.stage_latencies:
                stages.setdefault(s.stage, []).append(s.duration_ms)
    fig, ax = plt.subplots(figsize=(7, 4))
    names = sorted(stages, key=lambda k: (k == "e2e", k))
    if names:
        ax.boxplot([np.asarray(stages[n]) for n in names], whis=(1, 99), showfliers=False)
        ax.set_xticks(range(1, len(names) + 1), names)
    ax.set_ylabel("ms (box: quartiles, whiskers: p1-p99)")
    ax.set_title("Latency per stage and end to end (sensing to action)", fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    _save(fig, path)


def plot_steps(run: RunData, model_t_max: int, path: Path) -> None:
    plt = _pyplot()
    steps = np.asarray([d.steps_used for ds in run.perception.values() for d in ds])
    fig, ax = plt.subplots(figsize=(6, 4))
    if steps.size:
        ax.hist(steps, bins=np.arange(0.5, model_t_max + 1.5), rwidth=0.85)
        ax.axvline(steps.mean(), color="k", ls="--", label=f"mean {steps.mean():.2f} of T_max {model_t_max}")
        ax.legend(fontsize=8)
    ax.set_xlabel("SNN time steps used per decision (early exit)")
    ax.set_ylabel("decisions")
    ax.set_title("Dynamic-confidence early exit in the run", fontsize=10)
    _save(fig, path)


def plot_energy(run: RunData, path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for robot, ds in sorted(run.perception.items()):
        est = np.asarray([d.energy_estimated_uj for d in ds])
        if est.size:
            k = max(1, est.size // 200)
            ax.plot(np.arange(est.size)[::k], est[::k], ".", ms=2, label=f"{robot} estimated")
        meas = np.asarray([d.energy_measured_uj for d in ds])
        if np.isfinite(meas).any():
            ax.plot(np.flatnonzero(np.isfinite(meas)), meas[np.isfinite(meas)], ".", ms=2, label=f"{robot} measured")
    ax.set_xlabel("decision")
    ax.set_ylabel("energy per decision (uJ)")
    ax.set_yscale("log")
    ax.set_title("Energy per decision", fontsize=10)
    ax.legend(fontsize=7, markerscale=4)
    _save(fig, path)


def plot_patrol(path: Path, world, regions: Sequence[Tuple[str, Sequence[Tuple[float, float]]]],
                paths: Dict[str, np.ndarray], collisions: Sequence[Dict], title: str = "",
                obstacle_paths: Optional[np.ndarray] = None) -> None:
    """The arena of `world` (walls, static obstacles filled, moving ones at their start with
    their tracks dotted), each region's boundary, each robot's path (x, y rows) and every
    collision (x at fault, o not)."""
    plt = _pyplot()
    from matplotlib.patches import Circle

    fig, ax = plt.subplots(figsize=(6.5, 6))
    for x0, y0, x1, y1 in world.walls:
        ax.plot([x0, x1], [y0, y1], "k-", lw=2)
    for k, ((x, y), r) in enumerate(zip(world.obs_pos, world.obs_r)):
        moving = bool(world.obs_moving[k])
        ax.add_patch(Circle((x, y), r, fill=not moving, fc="0.55", ec="0.35", ls="--" if moving else "-"))
        if moving and obstacle_paths is not None and len(obstacle_paths):
            ax.plot(obstacle_paths[:, k, 0], obstacle_paths[:, k, 1], ":", lw=0.7, color="0.6")
    for name, boundary in regions:
        pts = list(boundary)
        if pts:
            xs, ys = zip(*(pts + pts[:1]))
            ax.plot(xs, ys, ":", lw=1, color="grey")
            ax.text(sum(xs[:-1]) / len(pts), sum(ys[:-1]) / len(pts), name, fontsize=7, color="grey", ha="center")
    for robot, a in sorted(paths.items()):
        if len(a):
            ax.plot(a[:, 0], a[:, 1], lw=1, label=robot)
    for c in collisions:
        ax.plot(c["x"], c["y"], "rx" if c.get("at_fault") else "mo", ms=8, mfc="none", mew=1.5)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title(title or "Robot paths and assigned regions (x: collision at fault, o: hit by another)", fontsize=9)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _save(fig, path)


def plot_trajectories(run: RunData, world, path: Path) -> None:
    """The demo's robot paths (from ground truth) over `world`, with its collisions."""
    regions = []
    if run.plans:
        regions = [(a.agent_id, [(p.x, p.y) for p in a.region.boundary.points]) for a in run.plans[-1].assignments]
    paths = {robot: np.asarray([(x, y) for _t, x, y in poses]).reshape(-1, 2) for robot, poses in run.poses.items()}
    plot_patrol(path, world, regions, paths, collision_episodes(run, world))


def _save(fig, path: Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
