"""The main job until the full fleet demo lands: replay a real EventPacket bag
through the event core and show what was decoded.

Each packet is decoded as part of one stream (state carries across packets) and
binned into ON/OFF frames as perception will consume them; the summary lists
events, triggers, time span, rates, polarity balance, drops and decode speed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from .events.errors import EventFormatError
from .events.packet import PacketStreamDecoder
from .events.representations import binned_frames
from .paths import data_dir
from .sensors.bag_source import BagReplaySource

FRAME_BINS = 4
FRAME_SIZE = (64, 36)  # the whole sensor pooled onto a 64x36 grid per time bin


def run_replay_demo(bag: Optional[Path] = None, realtime: bool = False) -> int:
    console = Console()
    if bag is None:
        root = data_dir()
        if root is None:
            raise EventFormatError("no recordings found; pass --bag or set SNN_AUTONOMY_DATA")
        bag = root / "evt3_trigger_bag"
    decoder = PacketStreamDecoder()
    n_events = n_on = n_packets = 0
    triggers = []
    t_first = t_last = None
    busiest = 0.0
    console.print(f"[bold]Replaying[/bold] {bag} ({'recorded pace' if realtime else 'as fast as possible'})")
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("packets", total=None)
        for _, pkt in BagReplaySource(bag, realtime=realtime):
            batch = decoder.decode(pkt)
            n_packets += 1
            progress.update(task, advance=1, description=f"packet {pkt.seq} {pkt.encoding} {pkt.width}x{pkt.height}")
            if batch is None or len(batch) == 0:
                continue
            n_events += len(batch)
            n_on += int(batch.p.sum())
            triggers.extend(batch.triggers.tolist())
            t_first = batch.t_first if t_first is None else t_first
            t_last = batch.t_last
            span = max(batch.duration_us, 1)
            frames = binned_frames(batch, batch.t_first, -(-span // FRAME_BINS) + 1, FRAME_BINS, out_size=FRAME_SIZE)
            busiest = max(busiest, float(frames.sum(axis=1).max()))
    span_ms = 0.0 if t_first is None else (t_last - t_first) / 1000.0
    table = Table(title=f"Decoded {bag.name}", show_header=False)
    rows = [
        ("packets", n_packets),
        ("events", n_events),
        ("external triggers", len(triggers)),
        ("sensor time span", f"{span_ms:.1f} ms ({t_first} .. {t_last} us)"),
        ("mean event rate", f"{n_events / max(span_ms, 1e-9) / 1000.0:.3f} M events/s"),
        ("ON fraction", f"{n_on / max(n_events, 1):.3f}"),
        ("busiest frame cell", f"{busiest:.0f} events ({FRAME_SIZE[0]}x{FRAME_SIZE[1]} grid, {FRAME_BINS} bins/packet)"),
        ("dropped events", decoder.stats.dropped_events),
        ("lost / rejected packets", f"{decoder.counters.lost_packets} / "
                                    f"{decoder.counters.rejected_encoding + decoder.counters.rejected_big_endian}"),
    ]
    for k, v in rows:
        table.add_row(k, str(v))
    console.print(table)
    for t, ch, value in triggers:
        console.print(f"  trigger channel {ch} -> {value} at t = {t} us")
    for line in decoder.stats.problems():
        console.print(f"  [yellow]{line}[/yellow]")
    return 0
