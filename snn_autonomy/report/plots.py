"""PNG plots of a run: latency per stage, SNN steps per decision (early exit), energy per
decision over time, robot trajectories over the arena with their assigned regions."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import numpy as np

from .summary import RunData


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


def plot_trajectories(run: RunData, arena_size_m, path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 6))
    w, h = arena_size_m
    ax.plot([0, w, w, 0, 0], [0, 0, h, h, 0], "k-", lw=1.5)
    if run.plans:
        for a in run.plans[-1].assignments:
            pts = [(p.x, p.y) for p in a.region.boundary.points]
            if pts:
                xs, ys = zip(*(pts + pts[:1]))
                ax.plot(xs, ys, ":", lw=1, color="grey")
                ax.text(sum(xs[:-1]) / len(pts), sum(ys[:-1]) / len(pts), a.agent_id, fontsize=7, color="grey",
                        ha="center")
    for robot, poses in sorted(run.poses.items()):
        a = np.asarray([(x, y) for _t, x, y in poses])
        if len(a):
            ax.plot(a[:, 0], a[:, 1], lw=1, label=robot)
        hits = [(c.position.x, c.position.y) for c in run.collisions.get(robot, ())]
        if hits:
            ax.plot(*zip(*hits), "rx", ms=7)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title("Robot trajectories and assigned regions (x: collisions)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _save(fig, path)


def _save(fig, path: Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
