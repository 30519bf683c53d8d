"""What the Python test scripts need, installed by themselves so that `make test` works on a
fresh machine:

- `ensure_venv()`: the virtualenv .venv-chart/ at the repository root with the pinned
  requirements (the real Helm v4 library through helm-python-sdk, and PyYAML), created on
  first use; the calling script is then re-executed inside it. Later runs take no time.
- `ensure_apt_tool(command, package)`: a command from a Debian package, installed with
  apt-get when it is missing (as root; `apt-get update` first only if the install fails).
- `debian_binary(path, package)`: a binary taken out of a Debian package without installing
  the package (`apt-get download` + `dpkg-deb -x` into target/ops-tools/), for packages
  that would also install and start a service, such as `prometheus` for `promtool`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-chart"
REQUIREMENTS = ["helm-python-sdk==0.2.2", "pyyaml==6.0.3"]
STAMP = VENV / ".landlord-requirements"
TOOLS = ROOT / "target" / "ops-tools"


def in_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def ensure_venv() -> None:
    """Create .venv-chart with the pinned requirements if needed, then re-exec inside it."""
    if in_venv():
        return
    python = VENV / "bin" / "python"
    wanted = "\n".join(REQUIREMENTS) + "\n"
    if not python.exists() or not STAMP.exists() or STAMP.read_text() != wanted:
        print(f"setting up {VENV.relative_to(ROOT)} ({', '.join(REQUIREMENTS)})", flush=True)
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        if subprocess.run(pip + REQUIREMENTS).returncode != 0:
            sys.exit(f"pip could not install {REQUIREMENTS} into {VENV}")
        STAMP.write_text(wanted)
    script = Path(sys.argv[0]).resolve()
    os.execv(str(python), [str(python), str(script), *sys.argv[1:]])


def _apt(*args: str) -> bool:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    r = subprocess.run(["apt-get", *args], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        print(f"apt-get {' '.join(args)} failed: {r.stderr.strip()[-500:]}", flush=True)
    return r.returncode == 0


def _apt_retrying(*args: str) -> bool:
    """apt-get ARGS; on failure `apt-get update` once (a fresh machine has no lists) and again."""
    return _apt(*args) or (_apt("update", "-qq") and _apt(*args))


def ensure_apt_tool(command: str, package: str) -> str:
    """The path of `command`, installing Debian `package` first if it is not on PATH."""
    found = shutil.which(command)
    if found:
        return found
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        sys.exit(f"{command} is missing; install the Debian package {package} (as root: "
                 f"apt-get install -y {package})")
    print(f"installing {package} with apt-get (for {command})", flush=True)
    if not _apt_retrying("install", "-y", "-qq", "--no-install-recommends", package):
        sys.exit(f"apt-get could not install {package}")
    found = shutil.which(command)
    if not found:
        sys.exit(f"{package} is installed but {command} is not on PATH")
    return found


def debian_binary(path: str, package: str) -> Path:
    """`path` (e.g. usr/bin/promtool) from Debian `package`, unpacked under target/ops-tools/
    without installing the package. Downloaded once; later calls return the unpacked file."""
    unpacked = TOOLS / package / path
    if unpacked.exists():
        return unpacked
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        sys.exit(f"{Path(path).name} is missing and there is no apt-get/dpkg-deb to fetch the "
                 f"Debian package {package}")
    downloads = TOOLS / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    for old in downloads.glob(f"{package}_*.deb"):
        old.unlink()
    print(f"downloading the Debian package {package} (for {Path(path).name})", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    r = subprocess.run(["apt-get", "download", "-qq", package], cwd=downloads, env=env,
                       capture_output=True, text=True)
    if r.returncode != 0:
        if os.geteuid() != 0 or not _apt("update", "-qq"):
            sys.exit(f"apt-get download {package} failed: {r.stderr.strip()[-500:]}")
        r = subprocess.run(["apt-get", "download", "-qq", package], cwd=downloads, env=env,
                           capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"apt-get download {package} failed: {r.stderr.strip()[-500:]}")
    [deb] = downloads.glob(f"{package}_*.deb")
    target = TOOLS / package
    if target.exists():
        shutil.rmtree(target)
    subprocess.run(["dpkg-deb", "-x", str(deb), str(target)], check=True)
    deb.unlink()
    if not unpacked.exists():
        sys.exit(f"the Debian package {package} has no {path}")
    return unpacked


def run_checks(checks: list) -> int:
    """Run `(name, function, skip reason or None)` checks: one line each (`ok`, `FAIL` with
    the reason, or `skip`), then `N passed, N failed`; 1 when anything failed."""
    import time
    import traceback

    passed = failed = 0
    for name, fn, skip in checks:
        if skip:
            print(f"skip {name}: {skip}", flush=True)
            continue
        start = time.monotonic()
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - every failure is reported, then counted
            failed += 1
            detail = str(e) if isinstance(e, AssertionError) else traceback.format_exc()
            print(f"FAIL {name}: {detail}", flush=True)
        else:
            passed += 1
            print(f"ok   {name} ({time.monotonic() - start:.1f}s)", flush=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def stop_process(proc: "subprocess.Popen") -> None:
    """SIGTERM, then SIGKILL after 5 s: never wait unbounded."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
