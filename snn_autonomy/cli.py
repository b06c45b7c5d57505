"""The `snn-autonomy` command.

  snn-autonomy demo                      the main job
  snn-autonomy events info PATH [--json] summarise a RAW file or an EventPacket bag
  snn-autonomy bench codec [--json]      codec throughput on one core
Sub-commands print JSON with --json (one object on stdout) and a readable table
otherwise. Errors in the input exit with status 2 and a one-line message.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from .events.errors import EventFormatError


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


def cmd_events_info(args: argparse.Namespace) -> int:
    from .events.info import recording_info

    info = recording_info(Path(args.path), topic=args.topic)
    if args.json:
        _print_json(info)
    else:
        _print_table(f"events info: {args.path}", info)
    return 0


def cmd_bench_codec(args: argparse.Namespace) -> int:
    from .bench.codec import run_codec_bench

    result = run_codec_bench(n_events=args.events, repeats=args.repeats,
                             data_dir=Path(args.data) if args.data else None)
    if args.json:
        _print_json(result)
    else:
        _print_table("bench codec (M events/s, one core)", result)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .replay_demo import run_replay_demo

    return run_replay_demo(Path(args.bag) if args.bag else None, realtime=args.realtime)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="snn-autonomy", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the main job")
    demo.add_argument("--bag", help="EventPacket bag to replay (default: the shipped evt3 recording)")
    demo.add_argument("--realtime", action="store_true", help="replay at the recorded pace")
    demo.set_defaults(func=cmd_demo)

    events = sub.add_parser("events", help="event recordings")
    ev_sub = events.add_subparsers(dest="events_command", required=True)
    info = ev_sub.add_parser("info", help="summarise a RAW file or a rosbag2 directory of EventPackets")
    info.add_argument("path")
    info.add_argument("--topic", help="EventPacket topic (bags with several)")
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=cmd_events_info)

    bench = sub.add_parser("bench", help="benchmarks (JSON with --json)")
    b_sub = bench.add_subparsers(dest="bench_command", required=True)
    codec = b_sub.add_parser("codec", help="EVT3/EVT2 decode and encode throughput")
    codec.add_argument("--events", type=int, default=2_000_000, help="synthetic stream length")
    codec.add_argument("--repeats", type=int, default=7)
    codec.add_argument("--data", help="recordings directory (default: $SNN_AUTONOMY_DATA or ../shared/data)")
    codec.add_argument("--json", action="store_true")
    codec.set_defaults(func=cmd_bench_codec)
    return ap


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except EventFormatError as exc:
        print(f"snn-autonomy: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
