"""A clone of the repository is the whole product: no file reaches outside it, and the wheel
carries the recordings the offline simulator serves."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from streaming.sim import recordings
from streaming.sim.config import PACKAGED_RECORDINGS, default_recordings_dir

ROOT = Path(__file__).resolve().parents[2]
# a path to the folder that sat beside the first checkouts: its relative path (dot-dot, slash, the
# name), its fixtures subfolder, or a pathlib join of the name (each spelled here with a character
# class, and described in words, so this file does not match itself)
OUTSIDE = re.compile(r"\.\./[s]hared|[s]hared/fixtures|/\s*[\"'][s]hared[\"']")


def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / name for name in out.decode().split("\0") if name]


def test_no_file_refers_to_a_folder_beside_the_checkout():
    offenders = []
    for path in tracked_files():
        if not path.is_file() or path.suffix not in {".py", ".md", ".toml", ".yaml", ".yml", ".cfg", ".ini", ""}:
            continue
        text = path.read_text(errors="replace")
        offenders += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in OUTSIDE.finditer(text)]
    assert offenders == [], "files that read data from outside the repository:\n" + "\n".join(offenders)


def test_the_simulator_serves_the_packaged_recordings(monkeypatch):
    monkeypatch.delenv("LIVERMORE_SIM_RECORDINGS", raising=False)
    assert default_recordings_dir() == PACKAGED_RECORDINGS
    products = {p["product_id"] for p in recordings.coinbase_products(PACKAGED_RECORDINGS)}
    assert {"BTC-USD", "ETH-USD"} <= products, "the Coinbase product recording is missing from the package"
    symbols = {s["symbol"] for s in recordings.binance_exchange_info(PACKAGED_RECORDINGS)["symbols"]}
    assert "BTCUSDT" in symbols, "the Binance exchangeInfo recording is missing from the package"
    assert recordings.read_frames(PACKAGED_RECORDINGS / recordings.COINBASE_WS), "no recorded Coinbase frames"


def test_wheel_contains_the_recordings(tmp_path):
    src = tmp_path / "src"
    for path in tracked_files():
        if path.is_file():
            dest = src / path.relative_to(ROOT)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(src)],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = wheels.glob("livermore-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    packaged = {f"streaming/sim/data/{p.relative_to(PACKAGED_RECORDINGS).as_posix()}"
                for p in PACKAGED_RECORDINGS.rglob("*") if p.is_file()}
    assert packaged and packaged <= names, f"missing from the wheel: {sorted(packaged - names)}"
