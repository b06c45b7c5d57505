"""The `snn-autonomy` command.

  snn-autonomy demo [--agents N] [--duration S] [--out DIR] [--no-attention] [--no-realtime]
                                         the main job: the fleet in the built-in world, recorded and reported
  snn-autonomy replay [--bag DIR]        replay an EventPacket bag through the event core
  snn-autonomy sim --agents N --duration S [--json]
                                         the built-in world with every event camera on, headless
  snn-autonomy closed-loop --agents N --duration S [--no-attention] [--json]
                                         robots patrol their assigned regions on perception, fused mode
  snn-autonomy launch [CONFIG] [--robots N] [--log-dir DIR] [--duration S]
                                         run the launch plan's nodes here, without launch_ros
  snn-autonomy events info PATH [--json] summarise a RAW or AEDAT4 file or an EventPacket bag
  snn-autonomy events record --out DIR   record topics (default: every EventPacket topic) to MCAP
  snn-autonomy dataset --split train|val|test [--world Y] [--json]
                                         generate (or find cached) a split; its class balance
  snn-autonomy dataset --bag DIR [--rig Y] LiDAR-labelled samples of a recording
  snn-autonomy train [--epochs N] [--out FILE]   train the perception SNN (GPU when present)
  snn-autonomy train --bag DIR... [--init F]     train or fine-tune it on recordings
  snn-autonomy calibrate --max-loss L [--model F]  re-derive the early-exit threshold
  snn-autonomy eval [--model F] [--world Y | --bag DIR...] [--json]  early-exit accuracy and the steps it saves
  snn-autonomy export --model F --format onnx|nir|lava --out FILE
  snn-autonomy bench codec|emulator|backends|loop|energy|patrol [--json]
Sub-commands print JSON with --json (one object on stdout) and a readable table
otherwise. Errors in the input exit with status 2 and a one-line message.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing
from pathlib import Path
from typing import Any, Dict, List, Optional

from .config import ConfigError, from_dict
from .events.errors import EventFormatError
from .perception.errors import ModelFileError, RecordingError


def config_option(parser: argparse.ArgumentParser, flag: str, cls: type, name: str, **overrides: Any) -> None:
    """An option whose type, default, choices and help come from field `name` of config dataclass
    `cls`, so that a default lives in one place; values are validated later through `cls`."""
    f = {x.name: x for x in dataclasses.fields(cls)}[name]
    tp = typing.get_type_hints(cls)[name]
    default = getattr(cls(), name)
    kw: Dict[str, Any] = {"dest": name, "default": default}
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        kw.update(type=type(args[0]), choices=list(args))
    elif origin in (tuple, list):
        kw.update(type=args[0], nargs=len(args) if origin is tuple and Ellipsis not in args else "+",
                  default=list(default))
    else:
        kw["type"] = tp
    text = overrides.pop("help", None) or f.metadata.get("help") or name.replace("_", " ")
    unit = f.metadata.get("unit")
    kw.update(overrides)
    shown = " ".join(map(str, kw["default"])) if isinstance(kw["default"], (list, tuple)) else kw["default"]
    kw["help"] = f"{text}{f' [{unit}]' if unit else ''} (default: {shown})".replace("%", "%%")
    parser.add_argument(flag, **kw)


def config_from_args(args: argparse.Namespace, cls: type) -> Any:
    """`cls` from the options `config_option` added for its fields (ConfigError names a bad one)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return from_dict({k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items() if k in names}, cls)


def _print_json(obj: Dict[str, Any]) -> None:
    json.dump(obj, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def _print_table(title: str, rows: Dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value")
    for k, v in rows.items():
        if isinstance(v, dict):
            v = ", ".join(f"{kk}={vv}" for kk, vv in v.items())
        table.add_row(str(k), str(v))
    Console().print(table)


def _report(args: argparse.Namespace, title: str, result: Dict[str, Any], table_skip: tuple = ()) -> None:
    """One JSON object on stdout with --json, else a readable table (without `table_skip` keys)."""
    if args.json:
        _print_json(result)
    else:
        _print_table(title, {k: v for k, v in result.items() if k not in table_skip})


def cmd_events_info(args: argparse.Namespace) -> int:
    from .events.info import recording_info

    info = recording_info(Path(args.path), topic=args.topic)
    _report(args, f"events info: {args.path}", info)
    return 0


def cmd_bench_codec(args: argparse.Namespace) -> int:
    from .bench.codec import run_codec_bench

    result = run_codec_bench(n_events=args.events, repeats=args.repeats,
                             data_dir=Path(args.data) if args.data else None)
    _report(args, "bench codec (M events/s, one core)", result)
    return 0


def cmd_bench_emulator(args: argparse.Namespace) -> int:
    from .bench.emulator import run_emulator_bench

    result = run_emulator_bench()
    _report(args, "bench emulator (M events/s, one core)", result)
    return 0


def cmd_bench_loop(args: argparse.Namespace) -> int:
    from .bench.loop import bench_loop

    if args.stress < 0:
        print("bench loop: --stress must be 0 or more processes", file=sys.stderr)
        return 2
    _report(args, "bench loop", bench_loop(args.duration, split=not args.fused_only, stress=args.stress))
    return 0


def cmd_bench_energy(args: argparse.Namespace) -> int:
    from .bench.energy import bench_energy

    _report(args, "bench energy", bench_energy(args.device, args.samples, args.model))
    return 0


def cmd_bench_patrol(args: argparse.Namespace) -> int:
    from .bench.patrol import bench_patrol

    perceptions = ("oracle", "snn") if args.perception == "both" else (args.perception,)
    result = bench_patrol(perceptions, worlds=args.worlds, seeds=args.seeds, agents=args.agents,
                          duration_s=args.duration, workers=args.workers,
                          model=Path(args.model) if args.model else None, attention_share=args.attention_share)
    _report(args, "bench patrol", result)
    return 0


def cmd_bench_backends(args: argparse.Namespace) -> int:
    from .bench.backends import run_backends_bench

    result = run_backends_bench(steps=args.steps, peers=not args.no_peers, providers=args.provider)
    _report(args, "bench backends (one time step, batch 1, one thread)", result)
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from .sensors.sim_runner import run_headless
    from .sim.config import load_world_config

    cfg = load_world_config(args.world)
    if args.seed is not None:
        from dataclasses import replace

        cfg = replace(cfg, seed=args.seed)
    if args.json:
        result = run_headless(cfg, args.agents, args.duration)
        _print_json(result)
        return 0
    with Progress(transient=True) as progress:
        task = progress.add_task(f"simulating {args.agents} agents", total=1.0)
        result = run_headless(cfg, args.agents, args.duration, progress=lambda f: progress.update(task, completed=f))
    _print_table("sim", result)
    return 0


def cmd_events_record(args: argparse.Namespace) -> int:
    from .events.packet import EVENT_PACKET_TYPE
    from .ros.recorder import record

    types = [] if args.topics else [EVENT_PACKET_TYPE]
    counts = record(Path(args.out), topics=args.topics or [], all_of_types=types, duration_s=args.duration)
    summary = {"out": args.out, "messages": sum(counts.values()), "topics": counts}
    _report(args, f"recorded {args.out}", summary)
    return 0 if counts else 1


def cmd_closed_loop(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import Progress

    from .loop.closed_loop import run_closed_loop

    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(f"{args.agents} agents, attention {'off' if args.no_attention else 'on'}", total=1.0)
        result = run_closed_loop(args.agents, args.duration, attention=not args.no_attention, world=args.world or "",
                                 seed=args.seed, backend=args.backend, perception=args.perception,
                                 model=Path(args.model) if args.model else None,
                                 plot=Path(args.plot) if args.plot else None,
                                 progress=lambda f: progress.update(task, completed=f),
                                 temporal_prior=not args.no_temporal_prior, teammates=not args.no_teammates)
    _report(args, "closed loop", result)
    return 0


def cmd_dataset(args: argparse.Namespace) -> int:
    import time

    from .perception.dataset import cache_dir, generate, split_spec

    if args.bag:
        return _dataset_from_bag(args)
    if args.write_bags:
        return _write_world_bags(args)

    spec = split_spec(args.split, args.world or "", duration_s=args.duration_s)
    t0 = time.monotonic()
    data = generate(spec, workers=args.workers)
    amb = data.ambiguous(spec.label)
    result = {"split": args.split, "world": args.world or "default", "seeds": list(spec.seeds),
              "samples": len(data), "class_balance": data.class_balance(),
              "ambiguous_fraction": round(float(amb.mean()), 4) if len(data) else 0.0,
              "approaching_fraction": round(float(data.approaching.mean()), 4) if len(data) else 0.0,
              "cache": str(cache_dir() / f"{spec.key()}.npz"), "seconds": round(time.monotonic() - t0, 1)}
    _report(args, f"dataset {args.split}", result)
    return 0


def _write_world_bags(args: argparse.Namespace) -> int:
    """`dataset --split S --write-bags DIR`: the split's drives as recordings, one bag per seed."""
    import time

    from .perception.dataset import split_spec
    from .perception.sim_bags import write_world_bag

    spec = split_spec(args.split, args.world or "", duration_s=args.duration_s)
    root = Path(args.write_bags)
    t0 = time.monotonic()
    bags = {}
    for seed in spec.seeds:
        counts = write_world_bag(root / f"seed_{seed}", spec, seed, with_state=args.truth)
        bags[f"seed_{seed}"] = sum(counts.values())
        print(f"seed {seed}: {bags[f'seed_{seed}']} messages", file=sys.stderr)
    _report(args, f"bags of the {args.split} split", {"split": args.split, "dir": str(root), "bags": bags,
                                                      "duration_s": spec.duration_s, "robots": spec.robots,
                                                      "seconds": round(time.monotonic() - t0, 1)})
    return 0


def _dataset_from_bag(args: argparse.Namespace) -> int:
    """`dataset --bag`: LiDAR-labelled samples of every camera in a recording, saved as one .npz."""
    import numpy as np

    from .perception.bag_dataset import dataset_from_bag, resolve_topics
    from .perception.dataset import Dataset, input_spec_of
    from .perception.labels import LabelConfig
    from .perception.model_io import read_manifest
    from .perception.rig import load_rig
    from .perception.sectors import SectorSpec
    from .paths import resolve_model

    manifest = read_manifest(resolve_model(args.model))
    label = LabelConfig(**manifest.get("labels", {}))
    rig = load_rig(args.rig)
    inputs = input_spec_of(manifest)
    spec = (SectorSpec.from_manifest(manifest) or SectorSpec()).for_view(rig.camera.hfov_deg)
    bag = Path(args.bag)
    parts, streams = [], []
    for k, topics in enumerate(resolve_topics(bag, args.events_topic, args.scan_topic, args.odom_topic)):
        data, report = dataset_from_bag(bag, rig, inputs, spec.count, label, topics=topics, bag_index=k)
        entry = report.as_dict()
        if args.truth:
            from .perception.bag_truth import simulator_agreement
            from .sim.config import load_world_config

            from .perception.sim_bags import WORLD_FILE

            robot = topics.events.strip("/").split("/")[0]
            recorded = bag / WORLD_FILE      # a layout written beside a drive of `dataset --write-bags`
            world = args.world or (str(recorded) if recorded.exists() else None)
            entry["truth"] = simulator_agreement(bag, data, robot, spec, label, load_world_config(world))
        parts.append(data)
        streams.append(entry)
    data = Dataset.concatenate(parts)
    out = Path(args.out or f"runs/dataset/{bag.name}.npz")
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, x=data.x, y=data.y, approaching=data.approaching, meta=data.meta, sector_m=data.sector_m)
    result = {"out": str(out), "samples": len(data), "streams": streams,
              "approaching_fraction": round(float(data.approaching.mean()), 4) if len(data) else 0.0,
              "grid": list(inputs.grid), "bin_us": inputs.bin_us, "t_max": inputs.t_max, "sectors": spec.count}
    if len(streams) == 1:      # one camera: its report at the top level too
        result.update({k: v for k, v in streams[0].items() if k not in result})
    _report(args, f"dataset from {bag}", result, table_skip=("streams",))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    import shlex

    from rich.console import Console
    from rich.progress import Progress

    from .perception.dataset import InputSpec
    from .perception.train import run_training
    from .perception.train_config import TrainConfig

    cfg = config_from_args(args, TrainConfig)
    command = "snn-autonomy " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    # progress goes to stderr, so that --json leaves stdout to the result
    with Progress(console=Console(stderr=True)) as progress:
        task = progress.add_task("training", total=cfg.epochs)

        def on_epoch(epoch: int, total: int, row: dict) -> None:
            progress.update(task, completed=epoch, description=(
                f"epoch {epoch}/{total} loss {row['loss']:.3f} synaptic ops/step {row['synops_per_step'] / 1e3:.0f} k "
                f"val acc {100 * row['val_accuracy']:.1f}%"))

        inputs = InputSpec(grid=tuple(args.grid), bin_us=args.bin_us)
        if args.bag:
            from .perception.bag_train import run_bag_training
            from .perception.rig import load_rig

            manifest = run_bag_training(cfg, [Path(b) for b in args.bag], Path(args.out), load_rig(args.rig),
                                        init=Path(args.init) if args.init else None, inputs=inputs,
                                        topics=(args.events_topic, args.scan_topic, args.odom_topic),
                                        command=command, progress=on_epoch, log=progress.console.print)
        else:
            manifest = run_training(cfg, Path(args.out), world=args.world or "", duration_s=args.duration_s,
                                    inputs=inputs, command=command, progress=on_epoch,
                                    log=progress.console.print, init=Path(args.init) if args.init else None,
                                    vary_movers=args.movers == "varied")
    summary = {"model": args.out, "threshold": manifest["early_exit"]["threshold"], **manifest["metrics"]["test"]}
    _report(args, f"trained {args.out}", summary)
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from .paths import resolve_model
    from .perception.train import recalibrate

    weights = resolve_model(args.model)
    manifest = recalibrate(weights, args.max_exit_loss, args.measure)
    _report(args, f"calibrated {weights}", {"model": str(weights), **manifest["early_exit"],
                                            **manifest["metrics"]["test"]})
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .perception.evaluate import evaluate

    plot = Path(args.plot) if args.plot else Path(args.out_dir) / "early_exit_curve.png"
    rig = None
    if args.bag:
        from .perception.rig import load_rig

        rig = load_rig(args.rig)
    result = evaluate(Path(args.model) if args.model else None, world=args.world or "", episodes=args.episodes,
                      seed=args.seed, duration_s=args.duration, plot=plot,
                      bags=[Path(b) for b in args.bag] if args.bag else None, rig=rig)
    _report(args, "eval", result, table_skip=("curve",))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .paths import NODELAY_MODEL, resolve_model
    from .perception.model_io import load_model

    model, manifest = load_model(resolve_model(args.model))
    if args.int8 and args.format != "onnx":
        print("snn-autonomy: error: --int8 applies to --format onnx only", file=sys.stderr)
        return 2
    if args.format == "onnx":
        from .backends.onnx_backend import export_onnx

        data = export_onnx(model, Path(args.out), int8=args.int8)
        kind = "int8-quantised " if args.int8 else ""
        print(f"wrote {args.out} ({len(data)} bytes): the {kind}step function with explicit state")
    elif args.format == "nir":
        from .backends.nir_export import export_nir

        try:
            graph = export_nir(model, manifest, Path(args.out), dt_s=args.nir_dt)
        except ValueError as exc:
            print(f"snn-autonomy: error: {exc}", file=sys.stderr)
            return 2
        print(f"wrote {args.out}: NIR graph of {len(graph.nodes)} nodes, one step = {graph.metadata['dt']} s")
        if graph.metadata["delay_taps"] > 1:
            print(f"note: the model has {graph.metadata['delay_taps']} delay taps, so the graph has Delay nodes, "
                  f"which snnTorch and Norse do not read; for them export models/{NODELAY_MODEL}", file=sys.stderr)
    else:
        from .backends.lava_backend import export_lava

        path = export_lava(model, manifest, Path(args.out))
        print(f"wrote {path} and {path.with_suffix('.json').name}: the network bundle the Lava worker loads")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .fleet_demo import run_demo

    report = run_demo(args.robots, args.duration, seed=args.seed, out_dir=Path(args.out),
                      attention=not args.no_attention, mode=args.mode, real_time_factor=args.real_time_factor,
                      realtime=not args.no_realtime, log=lambda line: print(line, file=sys.stderr), live=not args.json)
    if args.json:
        _print_json(report)
    else:
        keys = ("agents", "duration_s", "decisions", "e2e_latency_ms", "steps_mean", "t_max", "early_exit_saving",
                "energy_per_decision_uj", "events_per_decision", "synops_per_decision", "collisions", "coverage")
        _print_table("demo report", {k: report[k] for k in keys})
        print(f"report: {Path(args.out) / 'report.json'}; plots, recording and logs beside it")
    from .launcher import log_tails

    launch = report["launcher"]
    for what, logs in (("warning: nodes that stopped with an unusual status", launch["unclean_stop_logs"]),
                       ("nodes that failed or had to be killed", launch["failed_logs"])):
        if logs:
            print(f"demo: {what}: {', '.join(logs)}; the end of their logs:\n{log_tails(logs)}", file=sys.stderr)
    return 0 if report["launcher_exit_status"] == 0 else 1


def cmd_chaos(args: argparse.Namespace) -> int:
    from .chaos.run import FAULTS, run_chaos

    faults = args.faults.split(",") if args.faults else list(FAULTS)
    if args.stress < 0:
        print("chaos: --stress must be 0 or more processes", file=sys.stderr)
        return 2
    result = run_chaos(args.agents, faults, out_dir=Path(args.out), seed=args.seed,
                       real_time_factor=args.real_time_factor, stress=args.stress, realtime=not args.no_realtime,
                       measured_caps=not args.fixed_caps, log=lambda line: print(line, file=sys.stderr))
    if args.json:
        _print_json(result)
    else:
        rows = {name: ("survived" if r["survived"] else "NOT SURVIVED") + f": {r['what_happened']}"
                for name, r in result["faults"].items()}
        rows["unsafe commands"] = result["unsafe_commands"]
        _print_table("chaos", rows)
    return 0 if result["all_survived"] else 1


def cmd_prepare(args: argparse.Namespace) -> int:
    """Fill the on-disk caches a first start would otherwise fill: the numba kernels of the event
    codecs, the DVS emulator and the built-in world (compiled once into __pycache__), and the
    shipped model's ONNX graphs (the graph cache). Set-up runs it; run it again after an update."""
    import time

    from .paths import cache_root
    from .perception.engine import EngineConfig, open_engine
    from .sensors.warmup import warm_up
    from .sim.config import load_world_config, with_robot_count
    from .sim.ground_truth import range_scan
    from .sim.world import World

    t0 = time.monotonic()
    world = World(with_robot_count(load_world_config(None), 1))
    warm_up(world, 0)
    world.step()
    range_scan(world, 0, n_rays=45)
    t1 = time.monotonic()
    engine = open_engine(EngineConfig())
    t2 = time.monotonic()
    _report(args, "prepare", {"kernels_s": round(t1 - t0, 1), "graphs_s": round(t2 - t1, 1),
                              "graphs_from_cache": bool(getattr(engine.stepper, "graphs_from_cache", False)),
                              "cache": str(cache_root())})
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from .replay_demo import run_replay_demo

    return run_replay_demo(Path(args.bag) if args.bag else None, realtime=args.realtime)


def cmd_launch(args: argparse.Namespace) -> int:
    """Run the launch plan without launch_ros: one process group per node (snn_autonomy.launcher)."""
    from .launch_plan import build_plan, load_launch_config, security_environment
    from .launcher import run_plan

    cfg = load_launch_config(args.config, args.robots)
    plan = build_plan(cfg)
    launcher = run_plan(plan, Path(args.log_dir) if args.log_dir else None, duration_s=args.duration,
                        grace_s=args.grace, console="events" if args.json else args.console,
                        stream=sys.stderr if args.json else None, env=security_environment(cfg))
    summary = launcher.summary()
    _report(args, "launch", summary, table_skip=("states",) if args.console == "table" else ())
    return summary["exit_status"]


def _recording_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rig", help="sensor rig YAML: camera field of view and pose in the LiDAR frame, sync "
                                 "tolerances (default: config/rig_builtin.yaml, the built-in world's)")
    p.add_argument("--events-topic", help="EventPacket topic (default: each camera's, paired by namespace)")
    p.add_argument("--scan-topic", help="sensor_msgs/LaserScan topic (default: the camera's namespace's)")
    p.add_argument("--odom-topic", help="nav_msgs/Odometry topic (default: the camera's namespace's)")


def build_parser() -> argparse.ArgumentParser:
    # the defaults of these options live in the config dataclasses (imported light: no torch)
    from .backends.base import MEASURES
    from .launch_plan import LaunchConfig
    from .paths import DEFAULT_MODEL
    from .perception.dataset import DatasetSpec, InputSpec, MoverVariety
    from .perception.engine import EngineConfig
    from .perception.train_config import TrainConfig

    ap = argparse.ArgumentParser(prog="snn-autonomy", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="the main job: the fleet in the built-in world over ROS 2, report and plots")
    config_option(demo, "--agents", LaunchConfig, "robots", help="robots, each in its own namespace")
    demo.add_argument("--duration", type=float, default=60.0, help="simulated seconds after the first decision (the world runs at half real time)")
    demo.add_argument("--seed", type=int, help="world seed (arena layout; default: the world file's)")
    demo.add_argument("--out", default="runs/demo", help="output directory (default: runs/demo)")
    demo.add_argument("--no-attention", action="store_true", help="full sensing budget all the time")
    config_option(demo, "--mode", LaunchConfig, "mode", default="fused",
                  help="fused: one robot node per robot; split: sensor, perception, control, attention nodes")
    demo.add_argument("--real-time-factor", type=float, default=0.5, help="world speed (default 0.5)")
    demo.add_argument("--no-realtime", action="store_true",
                      help="every node on normal scheduling (the plan's realtime_priority off)")
    demo.add_argument("--json", action="store_true", help="print the report as JSON (no live table)")
    demo.set_defaults(func=cmd_demo)

    ch = sub.add_parser("chaos", help="the fault catalogue against a live fleet: survived or not, and the figures")
    ch.add_argument("--agents", type=int, default=2)
    ch.add_argument("--faults", default="", help="comma-separated subset of the catalogue (default: all)")
    ch.add_argument("--seed", type=int, help="world seed (default: the world file's)")
    ch.add_argument("--out", default="runs/chaos", help="output directory for logs (default: runs/chaos)")
    ch.add_argument("--stress", type=int, default=0, metavar="N",
                    help="N busy-loop processes, each pinned to a core, for the whole run (1: a machine with one "
                         "core fewer)")
    ch.add_argument("--no-realtime", action="store_true", help="every node at normal priority (no SCHED_FIFO)")
    ch.add_argument("--fixed-caps", action="store_true",
                    help="perception's event-rate cap from measured cost off: the fixed caps alone (to compare)")
    ch.add_argument("--real-time-factor", type=float, default=0.25, help="world speed (default 0.25: see "
                                                                          "snn_autonomy/chaos/run.py)")
    ch.add_argument("--json", action="store_true")
    ch.set_defaults(func=cmd_chaos)

    prep = sub.add_parser("prepare", help="compile the numba kernels and cache the shipped model's ONNX graphs "
                                          "(set-up runs it)")
    prep.add_argument("--json", action="store_true")
    prep.set_defaults(func=cmd_prepare)

    rep = sub.add_parser("replay", help="replay an EventPacket bag through the event core")
    rep.add_argument("--bag", help="EventPacket bag to replay (default: the shipped evt3 recording)")
    rep.add_argument("--realtime", action="store_true", help="replay at the recorded pace")
    rep.set_defaults(func=cmd_replay)

    sim = sub.add_parser("sim", help="run the built-in world with its event cameras, headless")
    sim.add_argument("--agents", type=int, default=4)
    sim.add_argument("--duration", type=float, default=10.0, help="simulated seconds")
    sim.add_argument("--world", help="world YAML (default: the shipped world)")
    sim.add_argument("--seed", type=int)
    sim.add_argument("--json", action="store_true")
    sim.set_defaults(func=cmd_sim)

    cl = sub.add_parser("closed-loop", help="robots patrol on perception in the built-in world (fused mode)")
    cl.add_argument("--agents", type=int, default=3)
    cl.add_argument("--duration", type=float, default=60.0, help="simulated seconds")
    cl.add_argument("--no-attention", action="store_true", help="full sensing budget all the time")
    cl.add_argument("--world", help="world YAML (default: the shipped world)")
    cl.add_argument("--seed", type=int)
    cl.add_argument("--perception", choices=["snn", "oracle"], default="snn",
                    help="snn: the shipped model on each robot's events; oracle: ground truth from the world's "
                         "geometry through the same controller")
    cl.add_argument("--model", help="with --perception snn: model file (default: the shipped model)")
    cl.add_argument("--plot", help="PNG of the robots' paths, the arena and every collision")
    cl.add_argument("--no-temporal-prior", action="store_true",
                    help="each decision on its own window only (no belief carried from the one before)")
    cl.add_argument("--no-teammates", action="store_true",
                    help="the robots do not hear each other's heartbeats (they see each other only on camera)")
    config_option(cl, "--backend", EngineConfig, "backend")
    cl.add_argument("--json", action="store_true")
    cl.set_defaults(func=cmd_closed_loop)

    dset = sub.add_parser("dataset", help="generate a split of the perception dataset; its class balance")
    dset.add_argument("--split", default="train", choices=["train", "val", "test"])
    dset.add_argument("--world", help="world YAML (default: the shipped world)")
    config_option(dset, "--duration", DatasetSpec, "duration_s", help="simulated seconds of data per seed")
    dset.add_argument("--workers", type=int, default=0, help="processes (default: one per seed, up to the CPUs)")
    dset.add_argument("--bag", help="label a recording instead (rosbag2 directory of events, LaserScan, odometry)")
    dset.add_argument("--out", help="with --bag: the samples' .npz (default: runs/dataset/<bag>.npz)")
    dset.add_argument("--model", help="with --bag: the model whose input grid and sectors to label for (default: shipped)")
    dset.add_argument("--truth", action="store_true",
                      help="with --bag of the built-in world: agreement with the simulator's labels (needs "
                           "/world/state); with --write-bags: record /world/state too")
    dset.add_argument("--write-bags", metavar="DIR",
                      help="write the split's drives as rosbag2 recordings (events, scan, odom per robot), one per seed")
    _recording_options(dset)
    dset.add_argument("--json", action="store_true")
    dset.set_defaults(func=cmd_dataset)

    train = sub.add_parser("train", help="train the perception SNN on data from the built-in world; with no "
                                         "options, the shipped model's recipe")
    train.add_argument("--out", default=f"models/{DEFAULT_MODEL}", help="model file (.npz; manifest beside it)")
    for flag, name in (("--head", "head"), ("--epochs", "epochs"), ("--batch-size", "batch_size"), ("--lr", "lr"), ("--seed", "seed"),
                       ("--synops-weight", "synops_weight"), ("--delays", "delay_steps"), ("--channels", "channels"), ("--hidden", "hidden"),
                       ("--reset", "reset"), ("--max-exit-loss", "max_exit_loss"), ("--device", "device")):
        config_option(train, flag, TrainConfig, name)
    config_option(train, "--grid", InputSpec, "grid", metavar=("W", "H"))
    config_option(train, "--bin-us", InputSpec, "bin_us", help="microseconds per time step (bin) of the input")
    train.add_argument("--world", help="world YAML for the data (default: the shipped world)")
    v = MoverVariety()
    train.add_argument("--movers", choices=["varied", "world"], default="varied",
                       help=f"moving obstacles of the training and validation seeds: varied (drawn per seed, "
                            f"{v.count[0]}-{v.count[1]} of them at {v.speed_mps[0]}-{v.speed_mps[1]} m/s: the "
                            f"shipped recipe) or the world file's own")
    train.add_argument("--bag", nargs="+", help="train on these recordings (rosbag2 directories) instead, "
                                                "labelled by their LiDAR")
    train.add_argument("--init", help="fine-tune this model (keeps its architecture, grid, time steps; a fresh readout "
                                      "where the world's camera has another sector count)")
    _recording_options(train)
    config_option(train, "--duration", DatasetSpec, "duration_s", help="simulated seconds of data per seed")
    train.add_argument("--json", action="store_true")
    train.set_defaults(func=cmd_train)

    cal = sub.add_parser("calibrate", help="re-derive a model's early-exit threshold; rewrites its manifest")
    cal.add_argument("--model", help="model file (default: the shipped model)")
    config_option(cal, "--max-loss", TrainConfig, "max_exit_loss")
    cal.add_argument("--measure", default=MEASURES[0], choices=MEASURES, help="confidence measure")
    cal.add_argument("--json", action="store_true")
    cal.set_defaults(func=cmd_calibrate)

    ev = sub.add_parser("eval", help="evaluate a perception model with and without early exit")
    ev.add_argument("--model", help="model file (default: the shipped model)")
    ev.add_argument("--world", help="world YAML (default: the shipped world's test split)")
    ev.add_argument("--episodes", type=int, help="number of layouts (seeds) to draw")
    ev.add_argument("--seed", type=int, help="first seed of the drawn layouts")
    ev.add_argument("--duration", type=float, help="simulated seconds per layout")
    ev.add_argument("--out-dir", default="runs/eval", help="where the PNG goes (default: runs/eval)")
    ev.add_argument("--bag", nargs="+", help="evaluate on these recordings' LiDAR-labelled samples instead")
    ev.add_argument("--rig", help="with --bag: the sensor rig YAML (default: config/rig_builtin.yaml)")
    ev.add_argument("--plot", help="PNG path (default: OUT_DIR/early_exit_curve.png)")
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(func=cmd_eval)

    exp = sub.add_parser("export", help="export the perception model for another back end")
    exp.add_argument("--model", help="model file (default: the shipped model)")
    exp.add_argument("--format", default="onnx", choices=["onnx", "nir", "lava"])
    exp.add_argument("--out", required=True)
    exp.add_argument("--int8", action="store_true", help="onnx: quantise weights to int8")
    exp.add_argument("--nir-dt", type=float, metavar="SECONDS",
                     help="nir: seconds one step stands for in the graph (default: the model's bin); snnTorch's "
                          "importer steps at 1e-4")
    exp.set_defaults(func=cmd_export)

    lau = sub.add_parser("launch", help="run the launch plan's nodes here (no launch_ros needed); Ctrl-C stops")
    lau.add_argument("config", nargs="?", help="launch plan YAML (default: config/sim.yaml)")
    lau.add_argument("--robots", type=int, help="number of robots (default: from the plan)")
    lau.add_argument("--log-dir", help="node logs and params files (default: $ROS_LOG_DIR/snn_launch_<time>_<pid>)")
    lau.add_argument("--duration", type=float, help="stop by itself after this many seconds")
    lau.add_argument("--grace", type=float, default=10.0, help="seconds from SIGINT to SIGTERM at shutdown")
    lau.add_argument("--console", default="lines", choices=["lines", "events", "table"],
                     help="node output prefixed by node (lines), runner events only, or a live table")
    lau.add_argument("--json", action="store_true", help="summary as JSON on stdout (runner events on stderr)")
    lau.set_defaults(func=cmd_launch)

    events = sub.add_parser("events", help="event recordings")
    ev_sub = events.add_subparsers(dest="events_command", required=True)
    info = ev_sub.add_parser("info", help="summarise a RAW file or a rosbag2 directory of EventPackets")
    info.add_argument("path")
    info.add_argument("--topic", help="EventPacket topic (bags with several)")
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=cmd_events_info)
    rec = ev_sub.add_parser("record", help="record topics over DDS into an MCAP rosbag2")
    rec.add_argument("--out", required=True, help="new bag directory")
    rec.add_argument("--topics", nargs="*", help="topics (default: every EventPacket topic)")
    rec.add_argument("--duration", type=float, help="seconds (default: until Ctrl-C)")
    rec.add_argument("--json", action="store_true")
    rec.set_defaults(func=cmd_events_record)

    bench = sub.add_parser("bench", help="benchmarks (JSON with --json)")
    b_sub = bench.add_subparsers(dest="bench_command", required=True)
    codec = b_sub.add_parser("codec", help="EVT3/EVT2 decode and encode throughput")
    codec.add_argument("--events", type=int, default=2_000_000, help="synthetic stream length")
    codec.add_argument("--repeats", type=int, default=7)
    codec.add_argument("--data", help="recordings directory (default: $SNN_AUTONOMY_DATA or ../shared/data)")
    codec.add_argument("--json", action="store_true")
    codec.set_defaults(func=cmd_bench_codec)
    emu = b_sub.add_parser("emulator", help="DVS emulator throughput")
    emu.add_argument("--json", action="store_true")
    emu.set_defaults(func=cmd_bench_emulator)
    bl = b_sub.add_parser("loop", help="sensing-to-action latency of one agent: fused and split over DDS")
    bl.add_argument("--duration", type=float, default=10.0, help="seconds measured per mode")
    bl.add_argument("--fused-only", action="store_true", help="skip the split nodes")
    bl.add_argument("--stress", type=int, default=0, metavar="N",
                    help="N busy-loop processes at normal priority competing for the CPUs during every run")
    bl.add_argument("--json", action="store_true")
    bl.set_defaults(func=cmd_bench_loop)
    be = b_sub.add_parser("energy", help="energy per decision: this machine's meters and the estimate")
    be.add_argument("--device", default="auto", help="auto | cpu | cuda")
    be.add_argument("--samples", type=int, default=500)
    be.add_argument("--model", help="model file (default: the shipped model)")
    be.add_argument("--json", action="store_true")
    be.set_defaults(func=cmd_bench_energy)
    bb = b_sub.add_parser("backends", help="SNN step latency of every back end and of snnTorch, Norse, SpikingJelly")
    bb.add_argument("--steps", type=int, default=3000, help="timed steps per back end")
    bb.add_argument("--no-peers", action="store_true", help="skip the peer libraries")
    bb.add_argument("--provider", action="append", default=[], metavar="NAME",
                    help="also time ONNX Runtime on this execution provider (e.g. CUDAExecutionProvider); repeatable")
    bb.add_argument("--json", action="store_true")
    bb.set_defaults(func=cmd_bench_backends)
    bp = b_sub.add_parser("patrol", help="coverage, speed, collisions at fault and halts of a patrolling fleet, "
                                         "with ground-truth (oracle) and SNN perception through the same controller")
    bp.add_argument("--perception", choices=["oracle", "snn", "both"], default="both")
    bp.add_argument("--worlds", nargs="+", default=["default", "unseen"], metavar="WORLD",
                    help="default, unseen (config/world_*.yaml), or a world YAML file of your own")
    bp.add_argument("--seeds", nargs="+", type=int, default=[7, 11])
    bp.add_argument("--agents", type=int, default=3)
    bp.add_argument("--duration", type=float, default=120.0, help="simulated seconds per run")
    bp.add_argument("--workers", type=int, default=0, help="processes (default: one per run, up to the CPUs)")
    bp.add_argument("--model", help="the SNN's model file (default: the shipped model)")
    bp.add_argument("--attention-share", action="store_true",
                    help="also run the SNN with attention off, and report attention's own saving of events and "
                         "synaptic operations per decision (goals: 40 %% and 2x)")
    bp.add_argument("--json", action="store_true")
    bp.set_defaults(func=cmd_bench_patrol)
    return ap


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (EventFormatError, ConfigError, ModelFileError, RecordingError) as exc:
        print(f"snn-autonomy: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
