"""Interactive browser visualisation (Mesa SolaraViz): `abm viz` calls :func:`serve`."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

APP = Path(__file__).resolve().parent / "app.py"


def server_command(host: str = "127.0.0.1", port: int = 8765) -> list[str]:
    """The `solara run` command line that serves the page."""
    return [sys.executable, "-m", "solara", "run", str(APP), "--host", str(host), "--port", str(int(port)),
            "--no-open", "--no-check-version", "--production"]


def server_env() -> dict[str, str]:
    """Environment for the server: no telemetry (works with no internet); no cookie warning on every
    page load (Solara's samesite notice, irrelevant on a plain-http local address)."""
    quiet = "ignore:Cookies with samesite:UserWarning"
    warnings = ",".join(w for w in (os.environ.get("PYTHONWARNINGS", ""), quiet) if w)
    return {**os.environ, "SOLARA_TELEMETRY_MIXPANEL_ENABLE": "False", "PYTHONWARNINGS": warnings}


def serve(host: str = "127.0.0.1", port: int = 8765) -> int:
    """Serve the visualisation at http://HOST:PORT/, print the address and block until interrupted.

    Returns the server's exit code (0 after Ctrl+C)."""
    url = f"http://{'localhost' if host in ('0.0.0.0', '::') else host}:{int(port)}/"
    proc = subprocess.Popen(server_command(host, port), env=server_env())
    print(f"contracting-abm visualisation: {url}  (Ctrl+C to stop)", flush=True)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return 0


__all__ = ["serve", "server_command", "server_env", "APP"]
