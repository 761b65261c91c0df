"""In-tree PEP 517 build backend of the flashprefill package.

Why not setuptools: a PEP 517 build with setuptools older than 70.1 (Python
3.11's bundled 65.5, for one) needs the separate ``wheel`` package, which a
fresh venv lacks and an offline machine cannot fetch. The package is a few
Python files plus one prebuilt shared library, so a wheel is a zip file this
module writes with the standard library alone: ``pip install
--no-build-isolation ./python`` works offline on any Python >= 3.9.

What goes in the wheel: ``flashprefill/*.py`` and
``flashprefill/_lib/libflashprefill.so``, copied (symlinks resolved) from, in
order:

1. ``$FLASHPREFILL_LIBRARY`` (the file),
2. ``$FLASHPREFILL_BUILD_DIR/lib/libflashprefill.so`` (a CMake build folder)
   or ``$FLASHPREFILL_BUILD_DIR/libflashprefill.so``,
3. ``../build/lib/libflashprefill.so`` next to this folder (the repository's
   default build folder).

Without one the build fails naming the places searched, unless
``FLASHPREFILL_NO_LIBRARY=1`` (the installed package then finds the library
at run time through ``$FLASHPREFILL_LIBRARY``). Editable installs (``pip
install -e``) put this folder on the path; the package then loads the
library from the source checkout's ``build/lib``.
"""

import base64
import hashlib
import io
import os
import re
import sysconfig
import tarfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE = "flashprefill"
LIB_NAME = "libflashprefill.so"


def _project():
    """name, version, summary, requires-python from pyproject.toml's
    [project] table (simple ``key = "value"`` lines: no TOML parser needed
    on Python < 3.11)."""
    text = (HERE / "pyproject.toml").read_text()
    table = text.split("[project]", 1)[1].split("\n[", 1)[0]
    fields = dict(re.findall(r'^([\w-]+)\s*=\s*"([^"]*)"', table, re.M))
    return fields["name"], fields["version"], fields.get("description", ""), fields.get(
        "requires-python", "")


def _metadata():
    name, version, summary, requires = _project()
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}",
             f"Summary: {summary}", "License: Apache-2.0"]
    if requires:
        lines.append(f"Requires-Python: {requires}")
    lines += ["Provides-Extra: test", 'Requires-Dist: numpy; extra == "test"',
              'Requires-Dist: pytest; extra == "test"']
    return "\n".join(lines) + "\n"


def _library():
    candidates = []
    if os.environ.get("FLASHPREFILL_LIBRARY"):
        candidates.append(Path(os.environ["FLASHPREFILL_LIBRARY"]))
    if os.environ.get("FLASHPREFILL_BUILD_DIR"):
        build = Path(os.environ["FLASHPREFILL_BUILD_DIR"])
        candidates += [build / "lib" / LIB_NAME, build / LIB_NAME]
    candidates.append(HERE.parent / "build" / "lib" / LIB_NAME)
    for path in candidates:
        if path.is_file():
            return path.resolve()
    if os.environ.get("FLASHPREFILL_NO_LIBRARY") == "1":
        return None
    raise RuntimeError(
        "flashprefill: libflashprefill.so not found; looked in: "
        + ", ".join(map(str, candidates))
        + ". Build it first (cmake -S . -B build -G Ninja && ninja -C build flashprefill), "
        "set FLASHPREFILL_BUILD_DIR to the CMake build folder, or set "
        "FLASHPREFILL_NO_LIBRARY=1 to install without it."
    )


def _tag():
    # The wheel holds a native library but no extension module: any Python 3,
    # this platform only.
    platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    return f"py3-none-{platform}"


class _Wheel:
    """A wheel being written: files plus the RECORD of their hashes."""

    def __init__(self, path, dist_info):
        self.zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED)
        self.dist_info = dist_info
        self.records = []

    def add(self, arcname, data, mode=0o644):
        info = zipfile.ZipInfo(arcname, date_time=(2020, 1, 1, 0, 0, 0))
        info.external_attr = (mode | 0o100000) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        self.zip.writestr(info, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        self.records.append(f"{arcname},sha256={digest},{len(data)}")

    def close(self, wheel_text):
        self.add(f"{self.dist_info}/METADATA", _metadata().encode())
        self.add(f"{self.dist_info}/WHEEL", wheel_text.encode())
        record = f"{self.dist_info}/RECORD"
        self.records.append(f"{record},,")
        self.zip.writestr(zipfile.ZipInfo(record, date_time=(2020, 1, 1, 0, 0, 0)),
                          "\n".join(self.records) + "\n")
        self.zip.close()


def _wheel_text(tag):
    return ("Wheel-Version: 1.0\nGenerator: flashprefill (_flashprefill_build)\n"
            f"Root-Is-Purelib: false\nTag: {tag}\n")


def _sources():
    return sorted(p for p in (HERE / PACKAGE).rglob("*.py") if "__pycache__" not in p.parts)


# --- PEP 517 hooks ----------------------------------------------------------


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    name, version, _, _ = _project()
    tag = _tag()
    filename = f"{name}-{version}-{tag}.whl"
    wheel = _Wheel(Path(wheel_directory) / filename, f"{name}-{version}.dist-info")
    for path in _sources():
        wheel.add(path.relative_to(HERE).as_posix(), path.read_bytes())
    library = _library()
    if library is not None:
        wheel.add(f"{PACKAGE}/_lib/{LIB_NAME}", library.read_bytes(), mode=0o755)
    wheel.close(_wheel_text(tag))
    return filename


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    """PEP 660: a wheel whose .pth file puts this folder on sys.path."""
    name, version, _, _ = _project()
    tag = _tag()
    filename = f"{name}-{version}-{tag}.whl"
    wheel = _Wheel(Path(wheel_directory) / filename, f"{name}-{version}.dist-info")
    wheel.add(f"_{name}_editable.pth", (str(HERE) + "\n").encode())
    wheel.close(_wheel_text(tag))
    return filename


def build_sdist(sdist_directory, config_settings=None):
    name, version, _, _ = _project()
    base = f"{name}-{version}"
    filename = f"{base}.tar.gz"
    with tarfile.open(Path(sdist_directory) / filename, "w:gz") as tar:
        files = [HERE / "pyproject.toml", HERE / "README.md", Path(__file__).resolve()]
        files += _sources() + sorted((HERE / "tests").glob("*.py"))
        for path in files:
            tar.add(path, arcname=f"{base}/{path.relative_to(HERE).as_posix()}")
        info = tarfile.TarInfo(f"{base}/PKG-INFO")
        data = _metadata().encode()
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return filename
