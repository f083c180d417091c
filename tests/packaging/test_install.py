"""The package installed NON-editable (what the Docker image does) carries its SQL and models.

``flarewatch/_shipped/sql`` and ``flarewatch/_shipped/models`` are links to the repository's
``sql/`` and ``models/``; a wheel must hold copies of the files (package data). The test builds
and installs the package with pip into a temporary folder and, in a fresh interpreter that sees
only that folder and the virtualenv's third-party packages (``-S``: no ``.pth`` file, so no
editable install of flarewatch, and not the repository's ``include/``), loads the shipped
detector and regressor and reads the migrations.

pip builds a local project in place (``build/``, ``*.egg-info`` next to the sources, and a stale
``build/lib`` can leak into a wheel), so the test installs from a copy of the files the build
reads (``pyproject.toml``, ``include/``, ``sql/``, ``models/``, links kept as links), not from the
checkout itself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_INPUTS = ("pyproject.toml", "setup.py", "include", "sql", "models")

CHECK = textwrap.dedent('''
    import json, sys
    from datetime import date
    from pathlib import Path

    target, repo_include, state = (Path(a).resolve() for a in sys.argv[1:4])
    assert all(Path(p or ".").resolve() != repo_include for p in sys.path), sys.path
    import flarewatch

    pkg = Path(flarewatch.__file__).resolve().parent
    assert pkg.is_relative_to(target), f"flarewatch imported from {pkg}, not from {target}"
    for sub in ("sql", "models"):  # real folders in the installed package, not links back to the repo
        assert (pkg / "_shipped" / sub).is_dir() and not (pkg / "_shipped" / sub).is_symlink(), sub

    from flarewatch import resources
    from flarewatch.store import db

    migrations = db.migrations()
    assert all(p.resolve().is_relative_to(target) for _, p in migrations)
    queries = sorted(p.name for p in (resources.sql_dir() / "queries").glob("*.sql"))

    from flarewatch.detect.deployed import shipped_weights
    from flarewatch.detect.yolo import YoloFlareDetector, offline_environment
    from flarewatch.simulation.scene import simulate_scene
    from flarewatch.sites import load_sites

    offline_environment(state)
    weights = shipped_weights()
    assert weights.resolve().is_relative_to(target), weights
    detector = YoloFlareDetector(weights, runtime="torch")
    site = {s.site_id: s for s in load_sites()}["rumaila-n"]
    scene = simulate_scene(site, date(2025, 6, 3))
    truth = [f for f in scene.truth["flares"] if f["active"] and f["in_scene"] and not f["cloud_covered"]]
    detections = detector.detect(scene.tile)
    found = [f["flare_id"] for f in truth
             if any(abs(d.row - f["row"]) <= 2 and abs(d.col - f["col"]) <= 2 for d in detections)]

    from flarewatch.estimate.deployed import _load, shipped_model, shipped_version

    path = shipped_model()
    assert path.resolve().is_relative_to(target), path
    regressor = _load(path)
    flare = {"hot_pixels": 4, "swir_frp_mw": 2.0, "cloud_flag": False, "saturated": True, "viirs_n": 1,
             "viirs_rh_mw": 3.0, "b11_excess_sum": 1.5, "b12_excess_sum": 2.5}
    (volume, lo, hi), = regressor.predict_flares([flare])

    print(json.dumps({"migrations": [v for v, _ in migrations], "queries": queries,
                      "truth": len(truth), "found": found, "detections": len(detections),
                      "regressor_version": shipped_version(path), "volume": [volume, lo, hi]}))
''')


def _copy_build_inputs(dest: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in BUILD_INPUTS:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, symlinks=True, ignore=ignore)
        elif src.exists():
            shutil.copy2(src, dest / name)
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The package installed with ``pip install --no-deps --no-build-isolation --target``."""
    src = _copy_build_inputs(tmp_path_factory.mktemp("src"))
    target = tmp_path_factory.mktemp("site")
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "",
           "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    res = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                          "--target", str(target), str(src)], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return target


def test_non_editable_install_carries_the_shipped_sql_and_models(installed, tmp_path):
    pkg = installed / "flarewatch"
    shipped = sorted(p.relative_to(pkg / "_shipped").as_posix()
                     for p in (pkg / "_shipped").rglob("*") if p.is_file())
    expected = sorted([p.relative_to(REPO).as_posix() for p in (REPO / "sql").rglob("*.sql")]
                      + ["models/detector/flare-yolo11n.pt", "models/detector/MODEL_CARD.md",
                         "models/regressor/flare-volume.skops", "models/regressor/MODEL_CARD.md"])
    assert shipped == expected
    for rel in expected:  # copies of the repository's files
        assert (pkg / "_shipped" / rel).read_bytes() == (REPO / rel).read_bytes(), rel

    paths = sysconfig.get_paths()
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "FLAREWATCH_SQL_DIR", "FLAREWATCH_MODELS_DIR")}
    # -S: the venv's site-packages only through PYTHONPATH, its .pth files (an editable flarewatch) unread
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([str(installed), paths["purelib"], paths["platlib"]]))
    res = subprocess.run([sys.executable, "-S", "-c", CHECK, str(installed), str(REPO / "include"),
                          str(tmp_path / "state")], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])

    assert out["migrations"] == sorted(p.name[:3] for p in (REPO / "sql").glob("[0-9][0-9][0-9]_*.sql"))
    assert out["queries"] == sorted(p.name for p in (REPO / "sql" / "queries").glob("*.sql"))
    assert out["truth"] and len(out["found"]) == out["truth"], out
    from flarewatch.estimate.deployed import shipped_version

    assert out["regressor_version"] == shipped_version(REPO / "models" / "regressor" / "flare-volume.skops")
    volume, lo, hi = out["volume"]
    assert 0 < lo <= volume <= hi


def test_empty_models_dir_is_an_error_naming_the_setting(tmp_path, monkeypatch):
    from flarewatch.detect.deployed import shipped_weights
    from flarewatch.estimate.deployed import shipped_model

    monkeypatch.setenv("FLAREWATCH_MODELS_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="FLAREWATCH_MODELS_DIR") as err:
        shipped_weights()
    assert str(tmp_path / "detector" / "flare-yolo11n.pt") in str(err.value)
    with pytest.raises(FileNotFoundError, match="FLAREWATCH_MODELS_DIR") as err:
        shipped_model()
    assert str(tmp_path / "regressor" / "flare-volume.skops") in str(err.value)
