"""Build the Lambda layer (`build/layer/python/...`) with pip, without Docker.

pip downloads the Linux wheels for the Lambda architecture and Python version
(`--platform ... --only-binary=:all:`), then the script removes what the functions never
load, and prints the unzipped sizes of the layer and the function code against Lambda's
250 MB limit. A build is reused while layers/requirements.txt, the target and the
pruning rules are unchanged (record `build/layer.build.json`, which app.py also checks).

    .venv/bin/python scripts/build_layer.py [--arch arm64|x86_64] [--force]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from infra.packaging import (  # noqa: E402  (needs the repo root on sys.path)
    LAMBDA_UNZIPPED_LIMIT_MB,
    LAYER_REQUIREMENTS,
    PACKAGE_DIR,
    PIPELINES_DIR,
    RUNTIME_GLIBC,
    directory_size_mb,
    layer_build_file,
    layer_build_info,
    stage_code_asset,
)

# Bump when the pruning rules change, so an older build is not reused.
PRUNE_VERSION = 1

ARCH_MACHINE = {"arm64": "aarch64", "x86_64": "x86_64"}

# pyarrow files the functions never load (measured on pyarrow 26, see DESIGN.md).
# libarrow_substrait, libarrow_acero and libarrow_dataset stay: pyarrow's core
# extension module `lib` links against them, so `import pyarrow` needs them.
PYARROW_PRUNE = (
    "libarrow_flight.so*",  # Arrow Flight RPC (~28 MB): not used
    "libarrow_python_flight.so*",
    "_flight.cpython-*.so",
    "flight.py",
    "libarrow_s3.so*",  # S3 filesystem (~16 MB): we upload with boto3; pyarrow.fs
    "_s3fs.cpython-*.so",  # treats a missing _s3fs as "S3FileSystem not available"
    "_pyarrow_cpp_tests.cpython-*.so",
    # Unversioned/full-version duplicates of the libraries (wheels hold copies, not
    # symlinks); the extension modules link the SONAME `*.so.<major>` only.
    "libarrow_python.so",
    "libarrow_python.so.*.*.*",
    "libarrow_python_parquet_encryption.so",
    "libarrow_python_parquet_encryption.so.*.*.*",
)
PYARROW_PRUNE_DIRS = ("include", "src", "tests", "includes")

# Anywhere in the layer: byte-code (Lambda cannot write next to /opt, and pyc files
# compiled here would go stale), Cython sources and C headers, test suites.
GLOBAL_PRUNE = ("*.pyc", "*.pyx", "*.pxd", "*.pxi", "*.h", "*.hpp")
GLOBAL_PRUNE_DIRS = ("__pycache__", "tests")

# Listed in the size report whatever their rank: what a decision added to the layer
# (cryptography: MySQL 8's caching_sha2_password logins without TLS).
ALWAYS_REPORTED = ("cryptography",)

# The one compiled module of our own (the text reader's packet splitter): cross-compiled
# with zig (PyPI `ziglang`, requirements-dev.txt) for the Lambda architecture and the
# oldest glibc manylinux2014 allows, against the limited API, so no Docker is needed.
EXTENSION_SOURCE = PACKAGE_DIR.parent / "myshift_packets.c"
EXTENSION_FILE = "myshift_packets.abi3.so"

# What the verification imports (only when the host can run the layer's binaries).
VERIFY_SNIPPET = """
import io, pyarrow as pa, pyarrow.parquet as pq, pyarrow.csv, pyarrow.compute, pyarrow.dataset
import pymysql, pydantic, yaml, aws_lambda_powertools
import myshift_packets
from pymysql import _auth
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
# caching_sha2_password without TLS: pymysql encrypts the password with the server's key.
public = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
pem = public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
assert _auth._have_cryptography and len(_auth.sha2_rsa_encrypt(b"pw", b"s" * 20, pem)) == 256
assert myshift_packets.split(b"\\x02\\x00\\x00\\x07\\x01a", 0, 7, 9) == (b"a\\n", 1, 6, 8, 0)
table = pa.table({"id": pa.array([1, 2], pa.int64()), "name": ["a", "b"]})
sink = io.BytesIO()
pq.write_table(table, sink, compression="zstd", use_dictionary=False)
# ParquetFile, not pq.read_table: on some hosts read_table's thread pool now and then
# aborts the interpreter at exit ("terminate called without an active exception"),
# with or without pruning; that is not what this check is about.
back = pq.ParquetFile(io.BytesIO(sink.getvalue())).read()
assert back.equals(table), back
print("verified: pyarrow", pa.__version__, "writes and reads Parquet from the layer;",
      "pymysql encrypts a caching_sha2_password login with cryptography")
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; defaults come from cdk.json's context."""
    context = _cdk_context()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--arch",
        choices=sorted(ARCH_MACHINE),
        default=str(context.get("lambda_architecture", "arm64")),
        help="Lambda architecture (default: cdk.json context lambda_architecture)",
    )
    parser.add_argument(
        "--python-version",
        default=str(context.get("lambda_python_version", "3.11")),
        choices=sorted(RUNTIME_GLIBC),
        help="Lambda Python runtime (default: cdk.json context lambda_python_version)",
    )
    parser.add_argument("--requirements", type=Path, default=LAYER_REQUIREMENTS)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "build" / "layer")
    parser.add_argument(
        "--max-glibc",
        default=None,
        help="accept wheels up to this glibc, e.g. 2.28 (default: the runtime's OS; a "
        "newer value builds a layer that will not import on that runtime: measuring only)",
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if unchanged")
    parser.add_argument(
        "--verify",
        choices=("auto", "yes", "no"),
        default="auto",
        help="import pyarrow.parquet from the built layer (auto: when the host matches)",
    )
    return parser.parse_args(argv)


def _cdk_context() -> dict[str, object]:
    path = REPO_ROOT / "cdk.json"
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")).get("context", {}))
    except (OSError, ValueError):
        return {}


def glibc_of(python_version: str, override: str | None) -> tuple[int, int]:
    """The newest glibc the layer may need: the runtime's, unless overridden."""
    if override is None:
        return RUNTIME_GLIBC[python_version]
    major, minor = (int(part) for part in override.split("."))
    return major, minor


def platform_tags(arch: str, glibc: tuple[int, int]) -> list[str]:
    """pip `--platform` tags loadable with `glibc` (manylinux2014 up to it)."""
    machine = ARCH_MACHINE[arch]
    major, newest = glibc
    tags = [f"manylinux2014_{machine}"]  # = manylinux_2_17
    tags += [f"manylinux_{major}_{minor}_{machine}" for minor in range(17, newest + 1)]
    return tags


def pip_install(
    requirements: Path, target: Path, arch: str, python_version: str, glibc: tuple[int, int]
) -> None:
    """Install the requirements' Linux wheels into `target`; SystemExit on failure."""
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile"]
    for tag in platform_tags(arch, glibc):
        command += ["--platform", tag]
    command += [
        "--implementation", "cp",
        "--python-version", python_version,
        "--only-binary=:all:",
        "--target", str(target),
        "-r", str(requirements),
    ]  # fmt: skip
    print("$", " ".join(command), flush=True)
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        newest = ".".join(map(str, glibc))
        raise SystemExit(
            f"error: pip could not install {_shown(requirements)} for "
            f"Lambda python{python_version}/{arch} (exit {result.returncode}). Only wheels "
            f"for glibc <= {newest} load on that runtime; a package whose Linux wheels "
            "need a newer glibc (pyarrow >= 21 wheels are manylinux_2_28) needs an older "
            "pin in layers/requirements.txt or a newer runtime (--python-version 3.12 and "
            "cdk.json context lambda_python_version)."
        )


def prune(site: Path) -> float:
    """Delete what Lambda never loads; returns the MB removed."""
    before = directory_size_mb(site)
    doomed: list[Path] = []
    for name in GLOBAL_PRUNE_DIRS:
        doomed += [p for p in site.rglob(name) if p.is_dir()]
    for pattern in GLOBAL_PRUNE:
        doomed += [p for p in site.rglob(pattern) if p.is_file()]
    pyarrow_dir = site / "pyarrow"
    if pyarrow_dir.is_dir():
        for pattern in PYARROW_PRUNE:
            doomed += list(pyarrow_dir.glob(pattern))
        doomed += [pyarrow_dir / name for name in PYARROW_PRUNE_DIRS]
    for path in doomed:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists() or path.is_symlink():
            path.unlink()
    return before - directory_size_mb(site)


def compile_extension(site: Path, arch: str) -> Path:
    """Cross-compile `myshift_packets` into the layer's site directory."""
    include = sysconfig.get_paths()["include"]  # any CPython >= 3.11: limited API only
    target = site / EXTENSION_FILE
    command = [
        sys.executable, "-m", "ziglang", "cc",
        "-target", f"{ARCH_MACHINE[arch]}-linux-gnu.2.17",
        "-shared", "-fPIC", "-O2", "-s",
        f"-I{include}",
        str(EXTENSION_SOURCE),
        "-o", str(target),
    ]  # fmt: skip
    print("$", " ".join(command), flush=True)
    result = subprocess.run(command, check=False, capture_output=True, text=True)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise SystemExit(
            f"error: could not compile {_shown(EXTENSION_SOURCE)} for {arch} with zig "
            f"(`make venv` installs it): {detail[-1] if detail else result.returncode}"
        )
    return target


def host_matches(arch: str, python_version: str) -> bool:
    """Whether this machine can import the layer's binaries."""
    host_python = f"{sys.version_info.major}.{sys.version_info.minor}"
    return platform.machine() == ARCH_MACHINE[arch] and host_python == python_version


def verify(site: Path) -> None:
    """Import pyarrow.parquet etc. from the layer alone (no site-packages)."""
    # -S: no site-packages, so only the stdlib and the layer are importable. No byte
    # code: the imports would leave __pycache__ in the pruned layer (+1.7 MB, stale).
    result = subprocess.run(
        [sys.executable, "-S", "-c", VERIFY_SNIPPET],
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"},
        check=False,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise SystemExit(f"error: the pruned layer does not import:\n{result.stderr.strip()}")
    print(result.stdout.strip())


def report_sizes(layer_dir: Path) -> bool:
    """Print layer + function code sizes; False when over Lambda's unzipped limit."""
    layer_mb = directory_size_mb(layer_dir)
    with tempfile.TemporaryDirectory() as tmp:
        code_dir = stage_code_asset(
            Path(tmp) / "asset", package_dir=PACKAGE_DIR, pipelines_dir=PIPELINES_DIR
        )
        code_mb = directory_size_mb(code_dir)
    total = layer_mb + code_mb
    print(f"layer unzipped:         {layer_mb:7.1f} MB  ({_shown(layer_dir)})")
    print(f"function code unzipped: {code_mb:7.1f} MB  (myshift/ + pipelines/)")
    print(
        f"total:                  {total:7.1f} MB  of Lambda's {LAMBDA_UNZIPPED_LIMIT_MB:.0f} MB "
        f"({LAMBDA_UNZIPPED_LIMIT_MB - total:.1f} MB to spare)"
    )
    for package, mb in largest_packages(layer_dir / "python"):
        print(f"  {package:<28} {mb:7.1f} MB")
    return total <= LAMBDA_UNZIPPED_LIMIT_MB


def _shown(path: Path) -> str:
    """A path relative to the repository when it is inside it."""
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def largest_packages(
    site: Path, top: int = 6, always: tuple[str, ...] = ALWAYS_REPORTED
) -> list[tuple[str, float]]:
    """The biggest top-level entries of the layer's site directory, and those in `always`."""
    sizes = []
    for entry in site.iterdir():
        if entry.is_dir() and not entry.name.endswith(".dist-info"):
            sizes.append((entry.name, directory_size_mb(entry)))
    ranked = sorted(sizes, key=lambda pair: pair[1], reverse=True)
    return [pair for rank, pair in enumerate(ranked) if rank < top or pair[0] in always]


def main(argv: list[str] | None = None) -> int:
    """Build (or reuse) the layer and report its size."""
    args = parse_args(argv)
    requirements: Path = args.requirements.resolve()
    out: Path = args.out.resolve()
    if not requirements.is_file():
        raise SystemExit(f"error: {requirements} does not exist")
    glibc = glibc_of(args.python_version, args.max_glibc)
    if glibc > RUNTIME_GLIBC[args.python_version]:
        print(
            f"warning: accepting wheels for glibc {args.max_glibc}; Lambda python"
            f"{args.python_version} cannot load them (use this build for measuring only)"
        )
    record = layer_build_file(out)
    wanted = layer_build_info(requirements, args.arch, args.python_version, glibc, PRUNE_VERSION)
    wanted["extension_sha256"] = hashlib.sha256(EXTENSION_SOURCE.read_bytes()).hexdigest()
    current = json.loads(record.read_text()) if record.is_file() else None
    if current == wanted and (out / "python").is_dir() and not args.force:
        print(f"layer up to date (python{args.python_version}, {args.arch}): {_shown(out)}")
    else:
        print(f"building the layer for python{args.python_version} on {args.arch} ...")
        staging = out.with_name(out.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        pip_install(requirements, staging / "python", args.arch, args.python_version, glibc)
        removed = prune(staging / "python")
        print(f"pruned {removed:.1f} MB (flight, s3, duplicate .so copies, tests, headers)")
        compile_extension(staging / "python", args.arch)
        check = args.verify == "yes" or (
            args.verify == "auto" and host_matches(args.arch, args.python_version)
        )
        if check:
            verify(staging / "python")
        else:
            print(
                f"not importing the layer: this host cannot run {args.arch} python"
                f"{args.python_version} binaries (file removals only)"
            )
        record.unlink(missing_ok=True)
        shutil.rmtree(out, ignore_errors=True)
        staging.rename(out)
        record.write_text(json.dumps(wanted, indent=2) + "\n")
    if not report_sizes(out):
        print("error: the layer and the function code exceed Lambda's unzipped limit")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
