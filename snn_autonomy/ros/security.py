"""SROS2 (DDS Security) for the nodes: a fail-closed check before `rclpy.init`, and the procedure.

What ROS 2 does
---------------
Security is switched on by the environment of each node process:

    ROS_SECURITY_ENABLE=true              exactly `true` (rcl treats any other value as off)
    ROS_SECURITY_STRATEGY=Enforce         exactly `Enforce`; anything else is Permissive
    ROS_SECURITY_KEYSTORE=/path/keystore  made by `ros2 security create_keystore`
    enclave: `--ros-args --enclave /robot_0/perception`, or ROS_SECURITY_ENCLAVE_OVERRIDE
             (the override wins; without either the enclave is `/`)

rcl looks for `<keystore>/enclaves/<enclave>/` and hands its files to the middleware:
identity_ca.cert.pem, cert.pem, key.pem, permissions_ca.cert.pem, governance.p7s,
permissions.p7s. With Enforce a missing directory is an error; with Permissive rcl runs the
node unsecured.

What happens with the pip-installed ROS 2 here (measured)
----------------------------------------------------------
The Fast DDS of the PyPI wheels is built without the DDS Security plugins (no
`builtin.PKI-DH` / `builtin.Access-Permissions` / `builtin.AES-GCM-GMAC` in libfastdds). With
ROS_SECURITY_ENABLE=true:
- Enforce, no enclave directory: `rclpy.init` fails ("SECURITY ERROR: directory ... does
  not exist").
- Permissive, no enclave directory: the node runs *unsecured*, with one warning.
- Enforce or Permissive with the enclave's files present: `rclpy.init` succeeds and creating
  the node fails ("This Fast DDS version doesn't have the security libraries").
So the middleware does not silently run unsecured when keys are present, but the failures
are tracebacks. `check_security()` (called by `spin_node` before `rclpy.init`) turns every
one of them into a one-line fatal log and exit status 2, and catches the mistakes rcl lets
through (`ROS_SECURITY_ENABLE=True` or `=1` and `ROS_SECURITY_STRATEGY=enforce`, which rcl
reads as "off" and "Permissive"). A node never runs unsecured when Enforce is requested.

Setting it up (full ROS 2 install from the distribution packages, which ship Fast DDS with
the security plugins; `sros2` provides `ros2 security`)
----------------------------------------------------------------------------------------
1. One keystore for the fleet (keep its private CA keys off the robots):

       ros2 security create_keystore ~/snn_keystore

2. One enclave per node, named like the node, `/<namespace>/<node>` (the names in the
   launch plan; `snn_autonomy.launch_plan.build_plan` lists them), for example:

       for r in robot_0 robot_1 robot_2; do
         for n in event_sensor perception control attention fleet_agent; do
           ros2 security create_enclave ~/snn_keystore /$r/$n
         done
       done
       ros2 security create_enclave ~/snn_keystore /world
       ros2 security create_enclave ~/snn_keystore /coordinator

   With `security.enclave_prefix: /fleet_a` the enclaves are `/fleet_a/robot_0/perception`...

3. Permissions: by default an enclave's permissions allow every topic. To restrict each node
   to its own topics, write a policy XML (the topics of DESIGN.md's interface table, plus
   /rosout, /parameter_events, /diagnostics and the node's parameter services) and run

       ros2 security create_permission ~/snn_keystore /robot_0/perception policy.xml

   (or `ros2 security generate_artifacts -k ~/snn_keystore -p policy.xml` for all at once).
   Every enclave directory must end up with the six files listed above.

4. Copy each robot's enclaves (not the keystore's `private/` directory) to the robot, and
   start the nodes with

       export ROS_SECURITY_KEYSTORE=~/snn_keystore
       export ROS_SECURITY_ENABLE=true
       export ROS_SECURITY_STRATEGY=Enforce

   `ros2 launch snn_autonomy robot.launch.py security:=true keystore:=~/snn_keystore` sets
   these and gives every node `--enclave /<namespace>/<node>`; the plan's `security:` section
   does the same (`enable`, `strategy`, `keystore`, `enclave_prefix`). A node started with
   security enabled and a `__node:=` remapping but no explicit enclave uses
   `/<namespace>/<node>` as its enclave, so `snn-autonomy launch` run with these variables
   exported gives each node its own enclave too.

5. Check: a node whose enclave is missing, incomplete, or whose middleware lacks the security
   plugins exits with status 2 and one line naming what is missing.
"""
from __future__ import annotations

import mmap
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Mapping, MutableMapping, Optional, Sequence

ENCLAVE_FILES = ("identity_ca.cert.pem", "cert.pem", "key.pem", "permissions_ca.cert.pem", "governance.p7s",
                 "permissions.p7s")
# key.pem may be replaced by a PKCS#11 URI file (Fast DDS reads key.p11 instead)
KEY_ALTERNATIVES = {"key.pem": ("key.p11",)}
# names of the builtin plugins a Fast DDS built with -DSECURITY=ON carries as strings
FASTDDS_SECURITY_MARKERS = (b"builtin.PKI-DH", b"builtin.AES-GCM-GMAC")
CYCLONE_SECURITY_LIBS = ("libdds_security_auth.so", "libdds_security_ac.so", "libdds_security_crypto.so")
NO_PLUGINS = ("security requested but this Fast DDS build has no DDS Security plugins ({lib}); "
              "install ROS 2 from the distribution packages (ros-<distro>-rmw-fastrtps-cpp with security) "
              "or run without ROS_SECURITY_ENABLE")
_SEGMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TRUE_LIKE = {"1", "yes", "on", "y"}


class SecurityError(RuntimeError):
    """Security was requested and cannot be provided: the node must not start."""


@dataclass(frozen=True)
class SecurityStatus:
    enabled: bool
    strategy: str = ""            # Enforce | Permissive
    enclave: str = ""
    enclave_dir: str = ""
    warning: str = ""             # Permissive and something missing: runs unsecured (rcl's rule)


# ---------------------------------------------------------------------------- arguments
def _ros_args(argv: Sequence[str]) -> List[str]:
    """The arguments inside `--ros-args ... [--]` sections (rcl's rule)."""
    out: List[str] = []
    inside = False
    for a in argv:
        if a == "--ros-args":
            inside = True
        elif a == "--" and inside:
            inside = False
        elif inside:
            out.append(a)
    return out


def enclave_from_args(argv: Sequence[str]) -> Optional[str]:
    """`--enclave X` / `-e X` of the ROS arguments, or None."""
    args = _ros_args(argv)
    for i, a in enumerate(args):
        if a in ("--enclave", "-e") and i + 1 < len(args):
            return args[i + 1]
    return None


def node_name_from_args(argv: Sequence[str]) -> Optional[str]:
    """`/<ns>/<node>` from `-r __node:=` (and `-r __ns:=`), or None without a `__node` remapping."""
    args = _ros_args(argv)
    node = ns = None
    for i, a in enumerate(args):
        if a in ("-r", "--remap") and i + 1 < len(args):
            key, _, value = args[i + 1].partition(":=")
            if key in ("__node", "__name"):
                node = value
            elif key == "__ns":
                ns = value
    if not node:
        return None
    return join_enclave(ns or "", node)


def join_enclave(*parts: str) -> str:
    segments = [s for p in parts for s in p.split("/") if s]
    return "/" + "/".join(segments)


def enclave_problem(enclave: str) -> Optional[str]:
    """Why an enclave name is unusable, or None (absolute, ROS name segments, no '..')."""
    if not enclave.startswith("/"):
        return f"enclave {enclave!r} is not absolute (it must start with '/')"
    bad = [s for s in enclave.strip("/").split("/") if s and not _SEGMENT.match(s)]
    if bad or "//" in enclave:
        return f"enclave {enclave!r} is not a valid name (segments of letters, digits and _)"
    return None


# ---------------------------------------------------------------------------- middleware
def _loaded_libraries() -> List[str]:
    try:
        with open("/proc/self/maps") as fh:
            return sorted({line.split()[-1] for line in fh if line.rstrip().endswith(".so") or ".so." in line})
    except OSError:
        return []


def rmw_implementation(env: Mapping[str, str]) -> str:
    return env.get("RMW_IMPLEMENTATION", "").strip() or "rmw_fastrtps_cpp"


def find_fastdds_library(rmw: str = "rmw_fastrtps_cpp") -> Optional[str]:
    """The libfastdds (Fast DDS 3) or libfastrtps (2.x) that the rmw library resolves to.

    Loads `lib<rmw>.so` as rmw_implementation would (from the directory of the librcl that
    rclpy uses first, then the loader's path) and reads which Fast DDS the loader linked."""
    import ctypes

    libs = _loaded_libraries()
    rcl_dirs = [os.path.dirname(p) for p in libs if os.path.basename(p).startswith("librcl.so")]
    for candidate in [os.path.join(d, f"lib{rmw}.so") for d in rcl_dirs] + [f"lib{rmw}.so"]:
        try:
            ctypes.CDLL(candidate)
            break
        except OSError:
            continue
    for p in _loaded_libraries():
        base = os.path.basename(p)
        if base.startswith("libfastdds.so") or base.startswith("libfastrtps.so"):
            return p
    return None


def fastdds_has_security(path: str) -> bool:
    """Whether the Fast DDS library carries the builtin security plugins (their names as strings)."""
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
        return all(m.find(marker) != -1 for marker in FASTDDS_SECURITY_MARKERS)


def middleware_problem(env: Mapping[str, str]) -> Optional[str]:
    """Why the middleware cannot do DDS Security, or None (None also where it cannot be told:
    the rmw itself then refuses to create the node, which spin_node reports as exit 2)."""
    rmw = rmw_implementation(env)
    if rmw.startswith("rmw_fastrtps"):
        lib = find_fastdds_library(rmw)
        if lib is None:
            return f"security requested but the Fast DDS library of {rmw} was not found to check its plugins"
        if not fastdds_has_security(lib):
            return NO_PLUGINS.format(lib=lib)
        return None
    if rmw.startswith("rmw_cyclonedds"):
        import ctypes

        missing = []
        for name in CYCLONE_SECURITY_LIBS:
            try:
                ctypes.CDLL(name)
            except OSError:
                missing.append(name)
        if missing:
            return (f"security requested but Cyclone DDS has no security plugins ({', '.join(missing)} not found); "
                    "install ROS 2 from the distribution packages")
    return None


# ---------------------------------------------------------------------------- the check
def check_security(argv: Optional[Sequence[str]] = None, env: Optional[MutableMapping[str, str]] = None,
                   middleware: Callable[[Mapping[str, str]], Optional[str]] = middleware_problem) -> SecurityStatus:
    """Verify that a node asked to run with DDS Security can; raises SecurityError if not.

    Nothing happens when ROS_SECURITY_ENABLE is unset or `false`. Otherwise the enclave is
    resolved as rcl does (ROS_SECURITY_ENCLAVE_OVERRIDE, else `--enclave`), except that a
    node launched with a `__node:=` remapping and no explicit enclave gets `/<ns>/<node>`
    (written to ROS_SECURITY_ENCLAVE_OVERRIDE of `env` for rcl); its directory must hold
    ENCLAVE_FILES and the middleware must have the security plugins. With Permissive a
    missing keystore or enclave is returned as a warning (rcl then runs the node unsecured).
    """
    argv = list(sys.argv if argv is None else argv)
    env = os.environ if env is None else env
    raw = env.get("ROS_SECURITY_ENABLE", "")
    if raw != "true":
        if raw.strip().lower() == "true" or raw.strip().lower() in _TRUE_LIKE:
            raise SecurityError(f"ROS_SECURITY_ENABLE={raw!r}: ROS 2 enables security only with exactly 'true' "
                                "and would run this node unsecured; write 'true' or 'false'")
        return SecurityStatus(False)
    strategy = env.get("ROS_SECURITY_STRATEGY", "")
    if strategy not in ("Enforce", "Permissive", ""):
        raise SecurityError(f"ROS_SECURITY_STRATEGY={strategy!r} is not 'Enforce' or 'Permissive' (ROS 2 would "
                            "read it as Permissive and may run unsecured)")
    strategy = strategy or "Permissive"
    enforce = strategy == "Enforce"

    enclave = env.get("ROS_SECURITY_ENCLAVE_OVERRIDE", "") or enclave_from_args(argv)
    if not enclave:
        enclave = node_name_from_args(argv) or "/"
        if enclave != "/":
            env["ROS_SECURITY_ENCLAVE_OVERRIDE"] = enclave
    why = enclave_problem(enclave)
    if why:
        raise SecurityError(f"security requested but {why}")

    keystore = env.get("ROS_SECURITY_KEYSTORE", "")
    missing = ""
    if not keystore:
        missing = "ROS_SECURITY_KEYSTORE is not set"
    elif not Path(keystore).is_dir():
        missing = f"keystore {keystore} does not exist"
    enclave_dir = Path(keystore) / "enclaves" / enclave.strip("/") if keystore else Path()
    if not missing and not enclave_dir.is_dir():
        missing = (f"enclave {enclave} has no directory {enclave_dir} "
                   f"(ros2 security create_enclave {keystore} {enclave})")
    if not missing:
        absent = [f for f in ENCLAVE_FILES if not (enclave_dir / f).is_file()
                  and not any((enclave_dir / alt).is_file() for alt in KEY_ALTERNATIVES.get(f, ()))]
        if absent:
            missing = f"enclave {enclave} in {enclave_dir} lacks {', '.join(absent)}"
    if missing and not enforce:
        return SecurityStatus(True, strategy, enclave, str(enclave_dir),
                              warning=f"security Permissive: {missing}; this node runs UNSECURED")
    if missing:
        raise SecurityError(f"security requested (Enforce) but {missing}")
    why = middleware(env)
    if why:
        raise SecurityError(why)
    return SecurityStatus(True, strategy, enclave, str(enclave_dir))
