"""`livermore exchange-sim --urls-file`: the file that carries the simulator's credentials is
private (0600) even when it was there before with a wider mode."""

from __future__ import annotations

import json
import signal
import stat
import subprocess

from tests.helpers.commands import LIVERMORE, clean_env
from tests.servers import wait_for


def test_the_urls_file_is_private_even_when_it_existed(tmp_path):
    urls = tmp_path / "urls.json"
    urls.write_text("{}")
    urls.chmod(0o644)
    proc = subprocess.Popen([*LIVERMORE, "exchange-sim", "--symbols", "1", "--urls-file", str(urls)],
                            env=clean_env({"LIVERMORE_HOME": str(tmp_path / "home")}),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: "credentials" in urls.read_text() or proc.poll() is not None, timeout=60,
                 message="the simulator writing its urls file")
        assert proc.poll() is None, proc.communicate()
        assert stat.S_IMODE(urls.stat().st_mode) == 0o600
        assert set(json.loads(urls.read_text())["credentials"]) == {"coinbase", "binance", "binance_us"}
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
