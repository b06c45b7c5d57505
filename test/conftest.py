"""Shared fixtures. Every test run gets its own ROS_DOMAIN_ID, so parallel runs
on one machine (or one network) never hear each other's nodes; under pytest-xdist (`make test`
runs two workers) every worker of a run gets its own."""
from __future__ import annotations

import os
import random
import zlib
from pathlib import Path

import pytest

if "SNN_TEST_DOMAIN_FIXED" not in os.environ:
    _worker = os.environ.get("PYTEST_XDIST_WORKER", "")      # gw0, gw1, ...
    if _worker:
        # the run's workers share one random id (xdist's) and take consecutive domains from it,
        # so two workers of a run never share one, whichever the draw
        _base = zlib.crc32(os.environ.get("PYTEST_XDIST_TESTRUNUID", "").encode()) % 91
        os.environ["ROS_DOMAIN_ID"] = str(10 + (_base + int(_worker[2:])) % 91)
    else:
        os.environ["ROS_DOMAIN_ID"] = str(random.SystemRandom().randint(10, 100))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
# One OpenMP thread for torch in the tests: with a thread per core, every torch op waits at a
# barrier for the thread on a core another process holds, and on a loaded machine (a CPU hog on
# one core) one test took 148 s instead of under 9.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from snn_autonomy.paths import data_dir  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


# Modules whose tests wait for many decisions of a whole world -> event sensor -> perception
# chain: two of them at once on two cores starve each other (on a machine twice slower than
# usual, 13 decisions in 90 s where 60 were wanted). Under `--dist loadfile` (`make test`) they
# are sent to a worker as one unit, so they run one after the other.
WORLD_CHAINS = ("test_ros_perception.py", "test_ros_modes.py")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class WorldChainsTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            return "world chains" if scope.rsplit("/", 1)[-1] in WORLD_CHAINS else scope

    return WorldChainsTogether(config, log)


@pytest.fixture(scope="session")
def recordings() -> Path:
    """The real recordings directory (../shared/data); missing data is a failure, not a skip."""
    d = data_dir()
    if d is None:
        pytest.fail("recordings not found: set SNN_AUTONOMY_DATA or provide ../shared/data (see README)")
    return d


@pytest.fixture(scope="session")
def evt3_bag(recordings: Path) -> Path:
    return recordings / "evt3_trigger_bag"


@pytest.fixture(scope="session")
def raw_files(recordings: Path) -> dict:
    return {p.name: p for p in sorted((recordings / "raw").glob("*.raw"))}


# Seconds of simulation per seed of the dataset samples the tests draw from: the test split's
# seeds (layouts never trained or calibrated on), 6 s each instead of 40. Back-end agreement
# and the early-exit checks need a few hundred real samples, not the full split, whose generation
# costs minutes on a fresh machine (the full splits are what `snn-autonomy eval` measures).
SAMPLE_DURATION_S = 6.0      # as `snn-autonomy bench backends` draws its input: one cached dataset serves both


@pytest.fixture(scope="session")
def test_split_sample():
    """Real samples of the test split's layouts (a Dataset of about 1,800 samples)."""
    from snn_autonomy.perception.dataset import generate, split_spec

    return generate(split_spec("test", duration_s=SAMPLE_DURATION_S))


@pytest.fixture(scope="session")
def open_floor_world(tmp_path_factory) -> str:
    """The default world with one robot at (1, 4) heading +x: about 2 m of open floor ahead."""
    import yaml

    from snn_autonomy.paths import config_path

    doc = yaml.safe_load(config_path("world_default.yaml").read_text())
    doc["world"]["robots"].update(count=1, start_poses=[[1.0, 4.0, 0.0]])
    path = tmp_path_factory.mktemp("world") / "open_floor.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


# Helpers that Python's multiprocessing starts for the test process itself (a library that uses
# a process pool or shared memory starts them on first use) and that live as long as it does:
# they are not nodes and talk to no one.
OWN_HELPERS = ("from multiprocessing.resource_tracker import", "from multiprocessing.forkserver import")


def _parent_pid(proc_dir: Path) -> int:
    stat = (proc_dir / "stat").read_text()
    return int(stat[stat.rindex(")") + 2:].split()[1])    # fields after "(comm)": state, ppid, ...


def _processes_of_this_run() -> dict:
    """pid -> command line of every other process started with this run's ROS_DOMAIN_ID, but for
    the test process's own multiprocessing helpers."""
    mark = f"ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']}".encode()
    found = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            if mark not in (d / "environ").read_bytes().split(b"\0"):
                continue
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if any(h in cmd for h in OWN_HELPERS) and _parent_pid(d) == os.getpid():
                continue
            found[int(d.name)] = cmd
        except (OSError, ValueError, IndexError):     # gone meanwhile, or not ours to read
            continue
    return {pid: cmd for pid, cmd in found.items() if cmd}    # zombies have no command line


@pytest.fixture(scope="module", autouse=True)
def no_process_outlives_its_module():
    """A node left running by one module would talk to the next module's nodes (same domain)
    and change its results: each module must stop what it started. Those left are killed and
    the module fails."""
    import signal
    import time

    before = set(_processes_of_this_run())
    yield
    deadline = time.monotonic() + 5.0
    left = {}
    while time.monotonic() < deadline:
        left = {p: c for p, c in _processes_of_this_run().items() if p not in before}
        if not left:
            return
        time.sleep(0.2)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    pytest.fail("processes left running by this module (killed): "
                + "; ".join(f"{pid}: {cmd[:160]}" for pid, cmd in left.items()))
