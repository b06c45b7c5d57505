"""Layering of perception over the back ends, and the one stepping interface they share.

perception/ sits above backends/: back ends take the model as an argument and import nothing
from perception (type hints under `if TYPE_CHECKING:` aside), checked on the source of every
module. Every back end implements `backends.base.Stepper`, and `run_until_exit` exits where
the confidence first reaches the threshold, or at t_max.
"""
from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path
from typing import Iterator, List, Tuple

import numpy as np
import pytest

from conftest import ROOT

PACKAGE = ROOT / "snn_autonomy"
PERCEPTION = "snn_autonomy.perception"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported_modules(source: str, module: str, is_package: bool = False) -> Iterator[Tuple[int, str]]:
    """(line, absolute module name) of every import of `source` (the module `module`) that runs:
    at module level, in functions and classes, relative or absolute, and `importlib.import_module`
    / `__import__` of a constant name; not those under `if TYPE_CHECKING:`. `from a import b`
    yields both a and a.b (b may be a submodule)."""
    package = module.split(".") if is_package else module.split(".")[:-1]

    def visit(node: ast.AST) -> Iterator[Tuple[int, str]]:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:           # only the body is for type checkers
                yield from visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1]) if node.level else ""
            target = ".".join(p for p in (base, node.module or "") if p)
            yield node.lineno, target
            for alias in node.names:
                yield node.lineno, f"{target}.{alias.name}"
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__"):
                arg = node.args[0].value
                if arg.startswith(".") and len(node.args) > 1:   # relative to a package argument
                    pkg = node.args[1]
                    if isinstance(pkg, ast.Constant) and isinstance(pkg.value, str):
                        level = len(arg) - len(arg.lstrip("."))
                        parts = pkg.value.split(".")
                        arg = ".".join(parts[:len(parts) - level + 1] + [arg.lstrip(".")])
                yield node.lineno, arg
        for child in ast.iter_child_nodes(node):
            yield from visit(child)

    yield from visit(ast.parse(source))


def _imports_of(package: str) -> Iterator[Tuple[Path, int, str]]:
    for path in sorted((PACKAGE / package).glob("*.py")):
        for line, name in imported_modules(path.read_text(), _module_name(path), path.name == "__init__.py"):
            yield path, line, name


def _is_perception(name: str) -> bool:
    return name == PERCEPTION or name.startswith(PERCEPTION + ".")


def test_the_import_scanner_sees_every_form_of_import():
    src = '''
from __future__ import annotations
import os
from typing import TYPE_CHECKING
from ..perception.model import ConvSNN
from .. import perception
import snn_autonomy.perception.runtime as rt
from snn_autonomy import perception as p2
if TYPE_CHECKING:
    from ..perception.dataset import Dataset
else:
    from ..perception import labels
def f():
    from ..perception.early_exit import exit_at
    importlib.import_module("snn_autonomy.perception.train")
    importlib.import_module("..perception.evaluate", "snn_autonomy.backends")
class C:
    def g(self):
        from .base import Stepper
'''
    found = list(imported_modules(src, "snn_autonomy.backends.x"))
    assert sorted({line for line, n in found if _is_perception(n)}) == [5, 6, 7, 8, 12, 14, 15, 16]
    assert (19, "snn_autonomy.backends.base") in found and (19, "snn_autonomy.backends.base.Stepper") in found
    assert not any("dataset" in n for _, n in found)      # under TYPE_CHECKING: for type hints only
    # in a package's __init__, one dot is the package itself
    in_init = list(imported_modules("from ..perception import model\nfrom .base import Stepper\n",
                                    "snn_autonomy.backends", is_package=True))
    assert (1, "snn_autonomy.perception.model") in in_init and (2, "snn_autonomy.backends.base") in in_init


def test_backends_import_nothing_from_perception():
    found = {}
    for path, line, name in _imports_of("backends"):
        if _is_perception(name):   # the module of a `from m import n` comes first: name that one
            found.setdefault((path, line), name)
    assert not found, "back ends must not import snn_autonomy.perception (perception sits above them):\n" + \
        "\n".join(f"{path.relative_to(ROOT)}:{line} imports {name}" for (path, line), name in found.items())


def test_the_scanner_finds_perceptions_imports_of_the_backends():
    # the allowed direction: perception uses the back ends (so the check above is what keeps the
    # two packages free of a cycle), and the scanner sees those imports in the real files
    uses = {name for _, _, name in _imports_of("perception")}
    assert any(n.startswith("snn_autonomy.backends") for n in uses)


def _loaded_by(imports: str, prefixes: tuple) -> str:
    """The modules under `prefixes` that a fresh interpreter has loaded after `imports`."""
    code = (f"import sys\n{imports}\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {prefixes!r} or m.startswith({prefixes!r})))\n")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def test_importing_every_back_end_loads_no_perception_module():
    imports = ("import snn_autonomy.backends, snn_autonomy.backends.base, snn_autonomy.backends.torch_backend\n"
               "import snn_autonomy.backends.onnx_backend, snn_autonomy.backends.lava_backend\n"
               "import snn_autonomy.backends.network_arrays, snn_autonomy.backends.nir_export\n"
               "import snn_autonomy.backends.nir_sim, snn_autonomy.backends.lava_worker")
    assert _loaded_by(imports, ("snn_autonomy.perception",)) == "[]"


def test_the_lava_worker_loads_neither_torch_nor_perception():
    # it runs in the Lava environment (Python 3.10, numpy < 2), which has neither
    found = _loaded_by("import snn_autonomy.backends.lava_worker",
                       ("torch", "onnx", "onnxruntime", "snn_autonomy.perception"))
    assert found == "[]", found


def test_the_control_node_starts_without_numba_or_scipy():
    """The controller handles decisions and commands: built with its start pose given (as on a
    robot, not placed by the built-in world), it has loaded neither the numba kernels (event
    codecs, renderer, ray caster) nor scipy, about a second of start-up on a small CPU; the
    coordinator loads scipy's solver when it is built, not at its first plan."""
    build = ("import rclpy\nfrom rclpy.parameter import Parameter\n"
             "from snn_autonomy.ros.control_node import ControlNode\nrclpy.init()\n"
             "pose = Parameter('start_pose', Parameter.Type.DOUBLE_ARRAY, [1.0, 1.0, 0.0])\n"
             "ControlNode(parameter_overrides=[pose]).destroy_node()")
    found = _loaded_by(build, ("numba", "scipy", "torch", "onnxruntime"))
    assert found == "[]", found
    found = _loaded_by("import rclpy\nfrom snn_autonomy.ros.coordinator_node import CoordinatorNode\nrclpy.init()\n"
                       "CoordinatorNode().destroy_node()", ("numba", "scipy"))
    assert "'scipy.optimize'" in found and "numba" not in found, found


# ---------------------------------------------------------------------------------------------- interface

@pytest.fixture(scope="module")
def shipped():
    from snn_autonomy.paths import model_path
    from snn_autonomy.perception.model_io import load_model

    return load_model(model_path("perception_default.npz"))


@pytest.fixture(scope="module")
def frames(shipped, test_split_sample) -> np.ndarray:
    """Real event frames (T_max, 2, H, W): a test-split sample of the shipped model's dataset whose
    confidence peaks inside the sequence, so that an exit there can be asked for."""
    from snn_autonomy.backends import make_stepper
    stepper = make_stepper("torch", *shipped)
    for sample in test_split_sample.x[:200]:
        f = sample.astype(np.float32)
        if 2 <= int(np.argmax(_confidences(stepper, f))) < len(f) - 2:
            return f
    pytest.fail("no test-split sample whose confidence peaks inside the sequence")


def _protocol_methods() -> List[str]:
    from snn_autonomy.backends.base import Stepper

    return [n for n, v in vars(Stepper).items() if callable(v) and not n.startswith("_")]


def test_torch_and_onnxruntime_steppers_implement_the_protocol(shipped):
    from snn_autonomy.backends import make_stepper
    from snn_autonomy.backends.base import StepResult, Stepper
    from snn_autonomy.backends.ort_stepper import OrtStepper
    from snn_autonomy.backends.torch_backend import TorchStepper

    model, manifest = shipped
    assert set(_protocol_methods()) == {"reset", "step", "run_until_exit"}
    for cls, name in ((TorchStepper, "torch"), (OrtStepper, "onnxruntime")):
        stepper = make_stepper(name, model, manifest)
        assert type(stepper) is cls and isinstance(stepper, Stepper)
        assert stepper.name == name and stepper.neurons == model.neurons()
        h, w = model.cfg.in_hw
        assert isinstance(stepper.step(np.zeros((2, h, w), np.float32)), StepResult)


def test_lava_stepper_has_the_protocol_methods():
    from snn_autonomy.backends.base import Stepper
    from snn_autonomy.backends.lava_backend import LavaStepper

    for name in _protocol_methods():
        want = inspect.signature(getattr(Stepper, name))
        got = inspect.signature(getattr(LavaStepper, name))
        assert list(got.parameters) == list(want.parameters), name
        assert [p.default for p in got.parameters.values()] == [p.default for p in want.parameters.values()]


def _confidences(stepper, frames: np.ndarray) -> List[float]:
    from snn_autonomy.backends.base import confidence_of

    stepper.reset()
    return [confidence_of(stepper.step(f).logits[:-1], groups=stepper.groups) for f in frames]


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_run_until_exit_stops_at_the_first_confident_step_or_at_t_max(shipped, frames, backend):
    from snn_autonomy.backends import make_stepper
    from snn_autonomy.backends.base import run_until_exit

    model, manifest = shipped
    stepper = make_stepper(backend, model, manifest)
    conf = _confidences(stepper, frames)
    # the peak's confidence as threshold: every earlier step is below it (argmax takes the first)
    first = int(np.argmax(conf))
    threshold = conf[first]
    r, steps, c = run_until_exit(stepper, frames, threshold)
    assert steps == first + 1 and c == pytest.approx(conf[first])
    stepper.reset()
    ref = [stepper.step(f) for f in frames[:steps]][-1]
    np.testing.assert_array_equal(r.logits, ref.logits)
    assert r.synops == ref.synops
    # never confident: all frames, or t_max of them
    r, steps, c = run_until_exit(stepper, frames, 1.01)
    assert steps == len(frames) and c == pytest.approx(conf[-1])
    r, steps, c = stepper.run_until_exit(frames, 1.01, t_max=3)
    assert steps == 3 and c == pytest.approx(conf[2])
    # confident at once: one step, from a fresh state whatever ran before
    r, steps, c = stepper.run_until_exit(frames, 0.0)
    assert steps == 1 and c == pytest.approx(conf[0])
    with pytest.raises(ValueError, match="no frames"):
        run_until_exit(stepper, frames[:0], 0.5)


def test_run_until_exit_takes_a_sequence_in_one_go_where_offered(shipped, frames):
    """A back end with step_sequence (Lava) gets the frames at once; the loop stops taking
    results at the exit step, so the state is where the exit left it."""
    from snn_autonomy.backends.base import run_until_exit
    from snn_autonomy.backends.torch_backend import TorchStepper

    class InOneGo(TorchStepper):
        def __init__(self, model) -> None:
            super().__init__(model)
            self.calls: List[int] = []
            self.taken = 0

        def step_sequence(self, frames):
            self.calls.append(len(frames))
            for f in frames:
                self.taken += 1
                yield self.step(f)

    from snn_autonomy.backends.base import output_groups

    model, manifest = shipped
    plain, one_go = TorchStepper(model), InOneGo(model)
    plain.groups = one_go.groups = output_groups(manifest)     # what make_stepper sets: one softmax per sector
    threshold = max(_confidences(plain, frames))
    want = run_until_exit(plain, frames, threshold)
    got = one_go.run_until_exit(frames, threshold)
    assert want[1] < len(frames)
    assert one_go.calls == [len(frames)] and one_go.taken == got[1] == want[1]
    np.testing.assert_array_equal(got[0].logits, want[0].logits)
