"""tseal_build - the in-tree PEP 517 / PEP 660 build backend of the tseal Python package.

Standard library only and `requires = []`: pip's isolated build environment needs nothing
from a package index, so `pip install ./python` works offline (a setuptools backend would make
pip download setuptools into the isolated environment first). It builds a pure-Python wheel of
python/tseal/ (a libtseal.so placed in python/tseal/ is included, and the wheel is then tagged
for this platform), an sdist, and editable wheels (a .pth file pointing at python/).
"""

import base64
import hashlib
import io
import os
import re
import sysconfig
import tarfile
import zipfile

NAME = "tseal"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # python/
PKG = os.path.join(ROOT, NAME)


def _version():
    with open(os.path.join(PKG, "__init__.py"), encoding="utf-8") as f:
        m = re.search(r'^__version__ = "([^"]+)"', f.read(), re.M)
    if not m:
        raise RuntimeError("tseal/__init__.py has no __version__")
    return m.group(1)


def _metadata():
    readme = ""
    p = os.path.join(ROOT, "README.md")
    if os.path.exists(p):
        with open(p, encoding="utf-8") as f:
            readme = f.read()
    lines = [
        "Metadata-Version: 2.1",
        "Name: %s" % NAME,
        "Version: %s" % _version(),
        "Summary: Open, verify and serve signed, encrypted, lossless model artifacts (.tseal)",
        "License: see the tseal source tree",
        "Requires-Python: >=3.8",
        # Nothing is required: NumPy (tensors on the host) and PyTorch + transformers
        # (tseal.torch) are used when present, so an offline install never fetches anything.
        "Provides-Extra: numpy",
        'Requires-Dist: numpy; extra == "numpy"',
        "Provides-Extra: bf16",
        'Requires-Dist: ml_dtypes; extra == "bf16"',
        "Provides-Extra: torch",
        'Requires-Dist: torch; extra == "torch"',
        'Requires-Dist: transformers; extra == "torch"',
        "Description-Content-Type: text/markdown",
        "",
        readme,
    ]
    return "\n".join(lines)


def _files():
    """(archive name, path) of every file of the package."""
    out = []
    for dirpath, dirnames, filenames in os.walk(PKG):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for fn in sorted(filenames):
            if fn.endswith((".pyc", ".pyo")):
                continue
            path = os.path.join(dirpath, fn)
            out.append((os.path.relpath(path, ROOT).replace(os.sep, "/"), path))
    return out


def _tag(files):
    if any(a.endswith(".so") for a, _ in files):
        plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
        return "py3-none-%s" % plat, False
    return "py3-none-any", True


def _digest(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _write_wheel(wheel_directory, entries, tag, purelib):
    """entries: list of (archive name, bytes). Returns the wheel's file name."""
    ver = _version()
    distinfo = "%s-%s.dist-info" % (NAME, ver)
    entries = list(entries)
    entries.append((distinfo + "/METADATA", _metadata().encode("utf-8")))
    wheel_txt = "Wheel-Version: 1.0\nGenerator: tseal_build\nRoot-Is-Purelib: %s\nTag: %s\n" % (
        "true" if purelib else "false",
        tag,
    )
    entries.append((distinfo + "/WHEEL", wheel_txt.encode()))
    entries.append((distinfo + "/top_level.txt", (NAME + "\n").encode()))
    record = io.StringIO()
    for arc, data in entries:
        record.write("%s,%s,%d\n" % (arc, _digest(data), len(data)))
    record.write("%s/RECORD,,\n" % distinfo)
    entries.append((distinfo + "/RECORD", record.getvalue().encode()))
    name = "%s-%s-%s.whl" % (NAME, ver, tag)
    os.makedirs(wheel_directory, exist_ok=True)
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w", zipfile.ZIP_DEFLATED) as z:
        for arc, data in entries:
            info = zipfile.ZipInfo(arc, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if arc.endswith(".so") else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return name


# ---- PEP 517 --------------------------------------------------------------------------------


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    files = _files()
    tag, purelib = _tag(files)
    entries = []
    for arc, path in files:
        with open(path, "rb") as f:
            entries.append((arc, f.read()))
    return _write_wheel(wheel_directory, entries, tag, purelib)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    pth = (ROOT + "\n").encode()
    return _write_wheel(wheel_directory, [("__editable__.%s.pth" % NAME, pth)], "py3-none-any", True)


def build_sdist(sdist_directory, config_settings=None):
    base = "%s-%s" % (NAME, _version())
    name = base + ".tar.gz"
    os.makedirs(sdist_directory, exist_ok=True)
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz") as t:
        for rel in ["pyproject.toml", "README.md", "_build/tseal_build.py"]:
            p = os.path.join(ROOT, rel)
            if os.path.exists(p):
                t.add(p, arcname=base + "/" + rel)
        for arc, path in _files():
            if not arc.endswith(".so"):
                t.add(path, arcname=base + "/" + arc)
        pkg_info = _metadata().encode("utf-8")
        ti = tarfile.TarInfo(base + "/PKG-INFO")
        ti.size = len(pkg_info)
        t.addfile(ti, io.BytesIO(pkg_info))
    return name
