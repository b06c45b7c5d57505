"""`snn-autonomy chaos --json` against a live fleet: a CI-sized part of the catalogue.

The whole catalogue takes about a minute and a half with two robots; each of its faults is
also a test of its own elsewhere in the suite (test_ros_control, test_launcher,
test_event_burst, test_ros_fleet, test_fleet_netns, test_clock_jump, test_hostile_input,
test_ros_world_sensor and test_control_modes for odometry_lost,
test_bad_config). Here the command itself runs end to end on one robot."""
from __future__ import annotations

import json
import subprocess
import sys

from ros_helpers import warn_of_unclean_stops
from snn_autonomy.launcher import log_tails


def test_chaos_json_reports_each_fault_survived_with_its_figures(tmp_path):
    cmd = [sys.executable, "-m", "snn_autonomy.cli", "chaos", "--json", "--agents", "1",
           "--faults", "sensor_stall,bad_files", "--out", str(tmp_path)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert p.stdout, p.stderr[-3000:]
    r = json.loads(p.stdout)
    assert set(r["faults"]) == {"sensor_stall", "bad_files"}
    for name, fault in r["faults"].items():
        assert fault["survived"], f"{name}: {fault['what_happened']}; {fault.get('last_diagnostics')}\n{p.stderr[-3000:]}"
    stall = r["faults"]["sensor_stall"]
    # the watchdog's deadline is 100 ms of the world's time (the nodes run on its clock); its figure
    # is a benchmark's, the ceiling here is generous
    assert 0 < stall["time_to_stop_world_s"] <= 0.5 and stall["moved_while_blind"] == 0, stall
    assert stall["time_to_stop_s"] > 0
    assert stall["time_to_recover_s"] is not None
    assert r["faults"]["bad_files"]["invalid_config"]["exit_status"] == 2
    assert r["unsafe_commands"] == 0 and r["all_survived"] and p.returncode == 0
    assert r["launcher"]["exit_status"] == 0, (r["launcher"], log_tails(r["launcher"]["failed_logs"]))
    warn_of_unclean_stops(r["launcher"])


def test_chaos_refuses_an_unknown_fault(tmp_path):
    p = subprocess.run([sys.executable, "-m", "snn_autonomy.cli", "chaos", "--faults", "meteor", "--out",
                        str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "unknown faults ['meteor']" in p.stderr and "Traceback" not in p.stderr


def test_a_move_counts_as_blind_only_when_no_decision_backs_it():
    """The judge of "moved while blind": a decision the probe missed (a respawned perception's
    first messages, sent before the probe discovered it) still backs a move when control's
    DecisionTrace names it; a move with neither is counted."""
    from types import SimpleNamespace

    from snn_autonomy.chaos.faults import blind_moves

    f = SimpleNamespace(cmd={"r": [(10.00, 0.2, 0.0), (10.30, 0.2, 0.0), (10.60, 0.0, 0.0), (11.00, 0.3, 0.1)]},
                        wall_per_sim_s=1.0,
                        decisions={"r": [9.95]}, traced_decisions={"r": [10.28]})
    assert blind_moves(f, "r", 9.0, 12.0) == 1          # 11.00: nothing in the 0.1 s (+ slack) before it
    f.traced_decisions["r"] = []
    assert blind_moves(f, "r", 9.0, 12.0) == 2          # 10.30 loses its only backing
    assert blind_moves(f, "r", 10.5, 10.9) == 0         # a zero command is never blind


def test_probe_times_map_onto_the_worlds_clock_run_by_run():
    """Deadlines are judged on the world's clock: a probe time maps onto the /clock readings around
    it, and after a world restart (its clock back to 0) onto the new run, not across the jump."""
    import math

    from snn_autonomy.chaos.live import world_time

    ts, ss, runs = [10.0, 11.0, 12.0, 13.0, 14.0], [1.0, 1.25, 1.5, 0.0, 0.25], [0, 3]
    assert math.isnan(world_time(5.0, [], [], [0]))
    assert world_time(10.5, ts, ss, runs) == 1.125         # a quarter of real time
    assert world_time(12.5, ts, ss, runs) == 1.5           # the first run's last reading, not a blend with 0
    assert world_time(13.5, ts, ss, runs) == 0.125
    assert world_time(9.0, ts, ss, runs) == 1.0 and world_time(20.0, ts, ss, runs) == 0.25
