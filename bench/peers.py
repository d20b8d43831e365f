"""The peers' own virtualenv (bench/.cache/peers, gitignored): cryptofeed and talipp installed
from PyPI with pip, never into Livermore's environment. Each helper returns None plus a note
when the peer cannot be installed or run, so the bench prints the note and skips its ratios."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache" / "peers"
REQUIREMENTS = ("cryptofeed==2.4.1", "redis", "talipp==2.7.0", "numpy")  # redis: CandlesRedis
STAMP = CACHE / "installed.txt"


def python() -> tuple[Path | None, str]:
    """The peers' interpreter, creating the virtualenv on first use; (None, why) if impossible."""
    exe = CACHE / "bin" / "python"
    wanted = "\n".join(REQUIREMENTS)
    if exe.exists() and STAMP.exists() and STAMP.read_text() == wanted:
        return exe, ""
    try:
        print(f"installing the peers ({', '.join(REQUIREMENTS)}) into {CACHE} ...", file=sys.stderr)
        venv.create(CACHE, with_pip=True, clear=True)
        subprocess.run([str(exe), "-m", "pip", "install", "-q", "--disable-pip-version-check", *REQUIREMENTS],
                       check=True, timeout=900, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        last = detail.decode(errors="replace").strip().splitlines()[-1:] if detail else [str(exc)]
        return None, f"peers not installed ({last[0][:160] if last else exc})"
    STAMP.write_text(wanted)
    return exe, ""


def memory_per_stream(exe: Path, kind: str, n: int) -> tuple[float | None, str]:
    """Bytes per stream of a peer's per-stream state (peer_memory.py), or (None, why)."""
    try:
        out = subprocess.run([str(exe), str(HERE / "peer_memory.py"), kind, str(n)], capture_output=True,
                             text=True, timeout=300, check=True)
        return float(out.stdout.strip().splitlines()[-1]), ""
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
        err = getattr(exc, "stderr", "") or str(exc)
        return None, f"{kind} memory not measured ({err.strip().splitlines()[-1][:160] if err.strip() else exc})"


def cryptofeed(exe: Path, ws_url: str, rest_url: str, redis_url: str, n_symbols: int,
               log: Path) -> subprocess.Popen[bytes]:
    """Start peer_cryptofeed.py (CandlesRedis on 5 timeframes of n symbols); the caller stops it."""
    host_port = redis_url.split("//", 1)[1].split("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    with open(log, "wb") as out:
        return subprocess.Popen([str(exe), str(HERE / "peer_cryptofeed.py"), ws_url, rest_url, host, port,
                                 str(n_symbols)], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
