"""Images built here, where no registry can be reached: every name says what it stands for.

- ``python_base``: a stand-in for ``python:3.11-slim``: Debian bookworm's minimal
  base with its Python 3.11 (``hack/build-test-base.sh``, from Debian's packages),
  plus this machine's CA bundle (PyPI is reached through a TLS-intercepting proxy
  here; a user's base image has their own).
- ``operator_image``: the real ``Dockerfile`` on that base.
- ``standin_image``: the PD, TiKV and TiDB STAND-INS of the kind tier,
  standard library only, on the same base.
- ``component_images``: that image as tidb-operator runs it, under
  ``local.chaosdemo.dev/standin/{pd,tikv,tidb}:v8.5.7`` (the tag is the TiDB
  version the TidbCluster asks for): ``/pd-server``, ``/tikv-server`` and
  ``/tidb-server`` start the stand-ins; for the start scripts tidb-operator
  writes, bash is ``/bin/sh``, and ``nslookup`` and ``wget`` are small ones
  of ours that resolve names with the pod's search domains.
- ``tidb_operator_image``: tidb-operator's controller-manager and discovery,
  built here from its Go module (``hack/build-tidb-operator.sh``), on the base.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from chaosdemo_local.cluster.control_plane import REPO
from chaosdemo_local.cluster.docker_nodes import docker_cli

__all__ = ["PYTHON_BASE", "REPO", "STANDIN_REPO", "component_images", "operator_image", "python_base",
           "standin_image", "tidb_operator_image"]

PYTHON_BASE = "chaosdemo-test-base:bookworm-python3.11-standin"
STANDIN_FILES = ("__init__.py", "simulation/__init__.py", "simulation/pd_model.py", "simulation/pd_api.py",
                 "standins/__init__.py", "standins/pd_server.py", "standins/pd_members.py",
                 "standins/tikv_server.py", "standins/tidb_server.py",
                 "standins/raft_groups.py", "simulation/tidb_protocol.py", "standins/etcd_backend.py",
                 "standins/nslookup.py", "standins/wget.py")
STANDIN_REPO = "local.chaosdemo.dev/standin"
TIDB_VERSION = "v8.5.7"


def _exists(host: str, image: str) -> bool:
    return docker_cli(host, "image", "inspect", image, check=False).returncode == 0


def python_base(host: str) -> str:
    """The stand-in for python:3.11-slim in the engine at ``host`` (built once, about 2 min)."""
    if _exists(host, PYTHON_BASE):
        return PYTHON_BASE
    base = subprocess.run(["bash", str(REPO / "hack" / "build-test-base.sh")], capture_output=True, text=True,
                          timeout=1200)
    if base.returncode != 0:
        raise RuntimeError(f"could not assemble the stand-in base image from Debian's packages: {base.stderr[-400:]}")
    docker_cli(host, "import", base.stdout.strip().splitlines()[-1], PYTHON_BASE + "-bare")
    with tempfile.TemporaryDirectory() as ctx:
        shutil.copy("/etc/ssl/certs/ca-certificates.crt", Path(ctx) / "ca-certificates.crt")
        (Path(ctx) / "pip.conf").write_text("[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n")
        (Path(ctx) / "Dockerfile").write_text(
            f"FROM {PYTHON_BASE}-bare\nCOPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\n"
            "COPY pip.conf /etc/pip.conf\n")
        docker_cli(host, "build", "-t", PYTHON_BASE, ctx)
    return PYTHON_BASE


def operator_image(host: str, tag: str) -> float:
    """Build the operator from the real Dockerfile on the stand-in base; the seconds it took."""
    base = python_base(host)
    t0 = time.monotonic()
    build = subprocess.run(["docker", "--host", host, "build", "--network", "host", "--build-arg",
                            f"BASE_IMAGE={base}", "-t", tag, str(REPO)], capture_output=True, text=True, timeout=1200)
    if build.returncode != 0:
        raise RuntimeError(build.stdout[-2000:] + build.stderr[-2000:])
    return time.monotonic() - t0


STANDIN_PIP = "mysql-mimic==3.0.5"  # the TiDB STAND-IN's MySQL protocol (and sqlglot, which it parses with)


def standin_image(host: str) -> str:
    """The image of the PD, TiKV and tidb-operator STAND-INS, tagged by its content."""
    src = Path(__file__).resolve().parents[1]  # this package, wherever it is installed
    base = PYTHON_BASE
    dockerfile = (
        f"FROM {base}\nRUN python3 -m venv /opt/standin && /opt/standin/bin/pip install --no-cache-dir "
        f"{STANDIN_PIP}\nCOPY chaosdemo_local /app/chaosdemo_local\n"
        "ENV PYTHONPATH=/app PYTHONUNBUFFERED=1 PATH=/opt/standin/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:"
        "/usr/bin:/sbin:/bin\n"
        'LABEL org.opencontainers.image.description="STAND-INS for PD, TiKV and tidb-operator (not them)"\n'
        "USER 65534:65534\n")
    digest = hashlib.sha256(b"".join((src / f).read_bytes() for f in STANDIN_FILES) + dockerfile.encode()
                            ).hexdigest()[:10]
    tag = f"chaosdemo/tidb-standins:{digest}"
    if _exists(host, tag):
        return tag
    python_base(host)
    with tempfile.TemporaryDirectory() as ctx:
        pkg = Path(ctx) / "chaosdemo_local"
        for f in STANDIN_FILES:
            (pkg / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src / f, pkg / f)
        (Path(ctx) / "Dockerfile").write_text(dockerfile)
        # pip reaches PyPI from the build: through the host's network, as the operator's image build does.
        build = docker_cli(host, "build", "--network", "host", "-t", tag, ctx, check=False)
        if build.returncode != 0:
            raise RuntimeError(f"the STAND-IN image did not build: {build.stderr.decode()[-1500:]}")
    return tag


def _build(host: str, tag: str, files: dict[str, Path | str], dockerfile: str) -> None:
    """``docker build`` of ``dockerfile`` with ``files`` (a path to copy, or a text) in its context."""
    with tempfile.TemporaryDirectory() as ctx:
        for name, src in files.items():
            if isinstance(src, Path):
                shutil.copy(src, Path(ctx) / name)
            else:
                (Path(ctx) / name).write_text(src)
                (Path(ctx) / name).chmod(0o755)
        (Path(ctx) / "Dockerfile").write_text(dockerfile)
        docker_cli(host, "build", "-t", tag, ctx)


def component_images(host: str, etcd: Path) -> dict[str, str]:
    """The STAND-IN images tidb-operator runs for ``pd``, ``tikv``, ``tidb`` and its ``helper``: {role: image}.

    ``etcd`` (the control plane's own build) goes in too: the PD stand-in serves it on PD's port, as PD
    serves its embedded etcd, because tidb-operator reads TiDB's topology keys through an etcd client.
    """
    standins = standin_image(host)
    images = {role: f"{STANDIN_REPO}/{role}:{TIDB_VERSION}" for role in ("pd", "tikv", "tidb")}
    images["helper"] = f"{STANDIN_REPO}/helper:{TIDB_VERSION}"  # spec.helper: the TiDB slow-log tailer
    entry = {f"{c}-server": f"#!/bin/sh\nexec python3 -m chaosdemo_local.standins.{c}_server \"$@\"\n"
             for c in ("pd", "tikv", "tidb")}
    for tool in ("nslookup", "wget"):
        entry[tool] = f"#!/bin/sh\nexec python3 -m chaosdemo_local.standins.{tool} \"$@\"\n"
    dockerfile = (
        # Not /usr/local/bin: tidb-operator mounts its start scripts there, over whatever the image has.
        # The scripts need [[ ]], source and pipefail: bash is /bin/sh, as a shell that has them is in PD's
        # image. nslookup and wget are ours (standins/): busybox's nslookup applies no search domain, and
        # its static wget crashed resolving a name here.
        f"FROM {standins}\nUSER 0\nCOPY etcd nslookup wget /usr/bin/\nRUN ln -sf bash /usr/bin/sh\n"
        "COPY pd-server tikv-server tidb-server /\n"
        'LABEL org.opencontainers.image.description="STAND-INS for PD, TiKV and TiDB (not them), '
        'started by the scripts tidb-operator writes"\n')
    digest = hashlib.sha256(etcd.read_bytes() + dockerfile.encode() + "".join(entry.values()).encode()).hexdigest()
    built = f"{STANDIN_REPO}/components:{digest[:10]}"
    if not _exists(host, built):
        _build(host, built, {"etcd": etcd, **entry}, dockerfile)
    for image in images.values():
        docker_cli(host, "tag", built, image)
    return images


def tidb_operator_image(host: str, bin_dir: Path, version: str) -> str:
    """tidb-operator ``version``'s controller-manager and discovery, built here, as one image."""
    tag = f"local.chaosdemo.dev/tidb-operator:{version}"
    base = python_base(host)
    _build(host, tag, {n: bin_dir / n for n in ("tidb-controller-manager", "tidb-discovery")}, (
        f"FROM {base}\nCOPY tidb-controller-manager tidb-discovery /usr/local/bin/\n"
        f'LABEL org.opencontainers.image.description="tidb-operator {version}, built here from its Go module"\n'))
    return tag
