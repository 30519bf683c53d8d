"""The S3-compatible server that tests/archive_s3.rs runs the archive store against: moto in
server mode, from PyPI, in the virtualenv target/venv-moto/ that this script makes on first
use with a pinned version (later runs take no time; `cargo clean` removes it).

    python3 tests/s3_server.py

prints the virtualenv's python on its last line; the test then runs
`<python> -m moto.server -H 127.0.0.1 -p <port>` itself, so that it owns the process and
kills it. When the virtualenv cannot be made (no network), it exits 1 with the reason, and
the test reports that it skipped.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "target" / "venv-moto"
REQUIREMENTS = ["moto[server]==5.2.5"]
STAMP = VENV / ".landlord-requirements"


def ensure_venv() -> Path:
    """target/venv-moto with REQUIREMENTS installed; its python."""
    python = VENV / "bin" / "python"
    wanted = "\n".join(REQUIREMENTS) + "\n"
    if python.exists() and STAMP.exists() and STAMP.read_text() == wanted:
        return python
    print(f"setting up {VENV.relative_to(ROOT)} ({', '.join(REQUIREMENTS)})", flush=True)
    if not python.exists():
        made = subprocess.run([sys.executable, "-m", "venv", str(VENV)], capture_output=True, text=True)
        if made.returncode != 0:
            sys.exit(f"python3 -m venv {VENV} failed: {made.stderr.strip()[-500:]}")
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    installed = subprocess.run(pip + REQUIREMENTS, capture_output=True, text=True)
    if installed.returncode != 0:
        sys.exit(f"pip could not install {REQUIREMENTS} into {VENV}: {installed.stderr.strip()[-500:]}")
    STAMP.write_text(wanted)
    return python


if __name__ == "__main__":
    print(ensure_venv())
