#!/usr/bin/env python3
"""Tests of Landlord's container image (Dockerfile, `make image`).

    python3 tests/image_test.py          # make image-test

This machine has no Docker engine and cannot pull a base image, and podman here cannot run a
container (its OCI runtime may not set rlimits). So the image is built from the binary
`make image` compiles (the Dockerfile's `prebuilt` stage: FROM scratch, nothing pulled), and
everything short of running it is checked. Podman (with `--storage-driver vfs`, which needs
no kernel overlay support) and musl-gcc (musl-tools: ring and zstd compile C for the musl
target) are installed with apt-get when missing.

Checks:
  1. `make image` builds a static binary and the image `ghcr.io/landlord-dev/landlord:<version>`,
     which is what the chart's image.repository and appVersion name; prints how long the
     build took.
  2. `podman image inspect`: user 65532:65532, entrypoint ["/landlord"], command ["run"],
     linux/amd64, exactly one layer on nothing (FROM scratch), OCI labels (title, version =
     Cargo's, revision = HEAD, licenses, source), and its size under a bound.
  3. Its files: exactly /landlord and the CA bundle (no shell, no libc, nothing else).
  4. `podman create` + `podman cp` copy the binary back out: it is statically linked, owned
     by root but executable by anyone, and runs: `landlord version` prints Cargo's version,
     `landlord crdgen` prints exactly crds/, and `landlord dev` is not in it (built
     `--no-default-features`).
  5. The chart runs the entrypoint with arguments the binary accepts: its container args
     (`run --leader-elect ...`) parse (`landlord run --help` lists every flag it passes).

The last line of output is `N passed, N failed`; the exit status is 1 when anything failed.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from testenv import ensure_apt_tool, run_checks  # noqa: E402

import json  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import tarfile  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

REPOSITORY = "ghcr.io/landlord-dev/landlord"
# The image measured 25.3 and then 25.8 MiB (the binary 25.6 MiB, the CA bundle 0.2 MiB) as
# this was written; a bound a little above it catches a debug build, the `dev` feature or a
# base image sneaking in.
MAX_IMAGE_BYTES = 32 * 1024 * 1024
CONTAINER = "landlord-image-test"


def cargo_version() -> str:
    m = re.search(r'^\[package\]\s*\nname = "landlord"\s*\nversion = "([^"]+)"',
                  (ROOT / "Cargo.toml").read_text(), re.M)
    assert m, "no version of the landlord package in Cargo.toml"
    return m[1]


VERSION = cargo_version()
IMAGE = f"{REPOSITORY}:{VERSION}"


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(["podman", "--storage-driver", "vfs", *args], capture_output=True,
                       text=True, timeout=600)
    if check:
        assert r.returncode == 0, f"podman {' '.join(args)} failed ({r.returncode}):\n" \
                                  f"{r.stdout[-2000:]}{r.stderr[-2000:]}"
    return r


def inspect() -> dict:
    [image] = json.loads(podman("image", "inspect", IMAGE).stdout)
    return image


def check_build() -> None:
    start = time.monotonic()
    r = subprocess.run(["make", "--no-print-directory", "image"], cwd=ROOT, capture_output=True,
                       text=True, timeout=1800)
    took = time.monotonic() - start
    assert r.returncode == 0, f"make image failed:\n{r.stdout[-3000:]}{r.stderr[-3000:]}"
    print(f"     make image took {took:.0f} s (static musl binary, profile `image`, and the "
          f"podman build)", flush=True)
    chart = (ROOT / "charts" / "landlord" / "Chart.yaml").read_text()
    app_version = re.search(r'^appVersion: "?([^"\n]+)"?$', chart, re.M)[1]
    values = (ROOT / "charts" / "landlord" / "values.yaml").read_text()
    repository = re.search(r"^image:\n(?:\s+#.*\n)*\s+repository: (\S+)$", values, re.M)[1]
    assert (repository, app_version) == (REPOSITORY, VERSION), \
        f"the chart runs {repository}:{app_version}, make image tags {IMAGE}"


def check_config() -> None:
    image = inspect()
    config = image["Config"]
    assert config.get("User") == "65532:65532", config.get("User")
    assert config.get("Entrypoint") == ["/landlord"], config.get("Entrypoint")
    assert config.get("Cmd") == ["run"], config.get("Cmd")
    assert (image["Os"], image["Architecture"]) == ("linux", "amd64")
    layers = image["RootFS"]["Layers"]
    assert len(layers) == 1, f"{len(layers)} layers: {layers}"
    assert not image.get("Parent"), image.get("Parent")
    history = [h for h in image.get("History", []) if not h.get("empty_layer")]
    assert len(history) == 1, history  # the one COPY; FROM scratch adds nothing
    labels = config.get("Labels") or {}
    revision = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True).stdout.strip()
    want = {
        "org.opencontainers.image.title": "landlord",
        "org.opencontainers.image.version": VERSION,
        "org.opencontainers.image.revision": revision,
        "org.opencontainers.image.licenses": "Apache-2.0",
        "org.opencontainers.image.base.name": "scratch",
    }
    got = {k: labels.get(k) for k in want}
    assert got == want, got
    assert labels.get("org.opencontainers.image.source", "").startswith("https://")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:]+(Z|[+-]\d\d:\d\d)",
                        labels.get("org.opencontainers.image.created", "")), labels
    size = image["Size"]
    print(f"     image size {size / 2**20:.1f} MiB (bound {MAX_IMAGE_BYTES / 2**20:.0f} MiB)",
          flush=True)
    assert size <= MAX_IMAGE_BYTES, f"the image is {size} bytes, over {MAX_IMAGE_BYTES}"


def exported_files(directory: Path) -> dict[str, tarfile.TarInfo]:
    """Every file of the image, by path, from `podman export` of a created container."""
    podman("rm", "--force", CONTAINER, check=False)
    podman("create", "--name", CONTAINER, IMAGE)
    try:
        tar = directory / "rootfs.tar"
        podman("export", "--output", str(tar), CONTAINER)
        with tarfile.open(tar) as t:
            return {m.name.lstrip("./"): m for m in t.getmembers() if not m.isdir()}
    finally:
        podman("rm", "--force", CONTAINER, check=False)


def check_files() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        files = exported_files(Path(tmp))
    # podman adds empty mount points for what it would bind at run time.
    ours = {p: m for p, m in files.items()
            if not (m.size == 0 and p in {"etc/hosts", "etc/resolv.conf", "etc/hostname",
                                           "run/.containerenv"})}
    assert sorted(ours) == ["etc/ssl/certs/ca-certificates.crt", "landlord"], sorted(files)
    binary = ours["landlord"]
    assert (binary.uid, binary.gid) == (0, 0), (binary.uid, binary.gid)
    assert binary.mode & 0o555 == 0o555 and not binary.mode & 0o022, oct(binary.mode)


def check_binary() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        podman("rm", "--force", CONTAINER, check=False)
        podman("create", "--name", CONTAINER, IMAGE)
        try:
            podman("cp", f"{CONTAINER}:/landlord", tmp)
        finally:
            podman("rm", "--force", CONTAINER, check=False)
        binary = Path(tmp) / "landlord"
        head = binary.read_bytes()[:64]
        assert head[:4] == b"\x7fELF", head
        # Static (static-pie): no program interpreter (dynamic loader) and no shared library
        # needed; its DYNAMIC segment only relocates itself.
        for args, absent in ((["--program-headers"], "INTERP"), (["--dynamic"], "(NEEDED)")):
            out = subprocess.run(["readelf", *args, "--wide", str(binary)],
                                 capture_output=True, text=True)
            assert out.returncode == 0, out.stderr
            assert absent not in out.stdout, out.stdout
        version = run_binary(binary, "version")
        assert version.strip().endswith(VERSION), version
        crds = run_binary(binary, "crdgen")
        committed = "---\n".join(p.read_text() for p in sorted((ROOT / "crds").glob("*.yaml")))
        assert normalise(crds) == normalise(committed), \
            "landlord crdgen in the image differs from crds/ (make crds)"
        r = subprocess.run([str(binary), "dev", "--help"], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode != 0, "the image's binary has `landlord dev` (the dev feature)"


def normalise(yaml_text: str) -> list[str]:
    """Documents without separators or blank lines, sorted: the same CRDs in any order."""
    docs = re.split(r"^---\s*$", yaml_text, flags=re.M)
    return sorted("\n".join(l for l in d.splitlines() if l.strip()) for d in docs if d.strip())


def run_binary(binary: Path, *args: str) -> str:
    r = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=60,
                       env={"PATH": "/nonexistent"})  # nothing from the host's environment
    assert r.returncode == 0, f"landlord {' '.join(args)} failed ({r.returncode}): {r.stderr}"
    return r.stdout


def check_chart_args() -> None:
    template = (ROOT / "charts" / "landlord" / "templates" / "deployment.yaml").read_text()
    m = re.search(r"^\s+args:\n((?:\s+- .*\n|\s+\{\{.*\n)+)", template, re.M)
    assert m, "no container args in the chart's Deployment"
    args = [a.strip()[2:] for a in m[1].splitlines() if a.strip().startswith("- ")]
    assert args[0] == "run", args
    with tempfile.TemporaryDirectory() as tmp:
        podman("rm", "--force", CONTAINER, check=False)
        podman("create", "--name", CONTAINER, IMAGE)
        try:
            podman("cp", f"{CONTAINER}:/landlord", tmp)
        finally:
            podman("rm", "--force", CONTAINER, check=False)
        help_text = run_binary(Path(tmp) / "landlord", "run", "--help")
    flags = [re.match(r"(--[a-z-]+)", a)[1] for a in args[1:] if a.startswith("--")]
    missing = [f for f in flags if f not in help_text]
    assert not missing, f"the chart passes {missing}, which `landlord run` does not take"


def main() -> int:
    ensure_apt_tool("podman", "podman")
    ensure_apt_tool("musl-gcc", "musl-tools")
    checks = [
        (f"1 make image builds {IMAGE}, the chart's image", check_build),
        ("2 user 65532, entrypoint, one layer from scratch, labels, size", check_config),
        ("3 only /landlord and the CA bundle", check_files),
        ("4 the copied-out binary: static, version, crdgen = crds/, no dev", check_binary),
        ("5 the chart's container args are the binary's flags", check_chart_args),
    ]
    return run_checks([(name, fn, None) for name, fn in checks])


if __name__ == "__main__":
    sys.exit(main())
