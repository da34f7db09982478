"""The layer's compiled module: scripts/build_layer.py cross-compiles it with zig, no Docker.

Both Lambda architectures are built here. The x86_64 build is also loaded in a Python
that sees nothing but it (`-S`) and held to the pure-Python splitter's results; the
arm64 build cannot run on this machine, so its ELF header is checked and, on Lambda,
`source.split_rows` only uses it after it agrees with the reference at import. The
size report it prints names cryptography whatever its rank.
"""

from __future__ import annotations

import importlib.util
import platform
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
ELF_MACHINE = {"arm64": 0xB7, "x86_64": 0x3E}


def _build_layer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_layer", REPO / "scripts/build_layer.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def build_layer() -> ModuleType:
    return _build_layer()


@pytest.mark.parametrize("arch", ["arm64", "x86_64"])
def test_the_extension_cross_compiles_for_each_lambda_architecture(
    build_layer: ModuleType, tmp_path: Path, arch: str
) -> None:
    built = build_layer.compile_extension(tmp_path, arch)
    assert built == tmp_path / "myshift_packets.abi3.so"
    header = built.read_bytes()[:20]
    assert header[:4] == b"\x7fELF"
    assert header[4] == 2  # 64-bit
    assert int.from_bytes(header[18:20], "little") == ELF_MACHINE[arch]


@pytest.mark.skipif(platform.machine() != "x86_64", reason="runs the x86_64 build")
def test_the_x86_64_build_loads_alone_and_agrees_with_the_reference(
    build_layer: ModuleType, tmp_path: Path
) -> None:
    build_layer.compile_extension(tmp_path, "x86_64")
    stream = (
        b"\x02\x00\x00\x07\x01a"
        + b"\x04\x00\x00\x08\xfc\x01\x00b"
        + b"\x05\x00\x00\x09\xfe\x00\x00\x02\x00"
    )
    code = (
        "import myshift_packets as m; "
        f"print(m.split({stream!r}, 0, 7, 10)); print(m.split({stream!r}, 6, 8, 1))"
    )
    shown = subprocess.run(
        [sys.executable, "-S", "-c", code],
        env={"PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    from myshift.source import split_rows_python

    assert shown == [
        repr(split_rows_python(stream, 0, 7, 10)),
        repr(split_rows_python(stream, 6, 8, 1)),
    ]
    assert shown[0] == repr((b"a\nb\n", 2, 14, 9, 1))


def test_a_compiler_failure_is_one_clear_error(
    build_layer: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "broken.c"
    broken.write_text("this is not C\n")
    monkeypatch.setattr(build_layer, "EXTENSION_SOURCE", broken)
    with pytest.raises(SystemExit, match=r"could not compile .*broken\.c for arm64 with zig"):
        build_layer.compile_extension(tmp_path, "arm64")
    assert not (tmp_path / "myshift_packets.abi3.so").exists()


# --- the size report ----------------------------------------------------------------


def test_the_size_report_always_lists_cryptography(build_layer: ModuleType, tmp_path: Path) -> None:
    """cryptography is listed whatever its rank; the other entries only in the top N."""
    for name, size in (("pyarrow", 3000), ("pydantic_core", 2000), ("cryptography", 10)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "blob").write_bytes(b"x" * size)
    (tmp_path / "cryptography-50.0.2.dist-info").mkdir()
    names = [name for name, _ in build_layer.largest_packages(tmp_path, top=1)]
    assert names == ["pyarrow", "cryptography"]
    assert "cryptography==" in (REPO / "layers" / "requirements.txt").read_text()
