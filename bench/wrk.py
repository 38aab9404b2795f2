"""Driving ``wrk`` (Debian's package): install if missing, run, and parse its report."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import attrs

_TIME_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_TIME = r"([\d.]+)(us|ms|s|m|h)"


class WrkError(RuntimeError):
    """wrk could not be installed or run, or its report could not be read."""


@attrs.frozen(kw_only=True)
class WrkResult:
    """One wrk run: throughput, latency percentiles (seconds) and every kind of failure."""

    requests: int
    duration_s: float
    requests_per_s: float
    percentiles: dict[int, float]
    non_2xx_3xx: int = 0
    socket_errors: dict[str, int] = attrs.field(factory=dict)

    @property
    def p99_s(self) -> float:
        return self.percentiles[99]

    @property
    def errors(self) -> int:
        return self.non_2xx_3xx + sum(self.socket_errors.values())


def _seconds(value: str, unit: str) -> float:
    return float(value) * _TIME_UNITS[unit]


def parse(output: str) -> WrkResult:
    """Parse wrk's text report (run with ``--latency`` to get the percentiles)."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    total = re.search(r"^\s*(\d+) requests in " + _TIME, output, re.MULTILINE)
    if rps is None or total is None:
        raise WrkError(f"not a wrk report:\n{output}")
    percentiles = {
        int(m.group(1)): _seconds(m.group(2), m.group(3))
        for m in re.finditer(r"^\s+(50|75|90|99)%\s+" + _TIME, output, re.MULTILINE)
    }
    non_ok = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sock = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    socket_errors = (
        dict(zip(("connect", "read", "write", "timeout"), map(int, sock.groups()), strict=True))
        if sock
        else {}
    )
    return WrkResult(
        requests=int(total.group(1)),
        duration_s=_seconds(total.group(2), total.group(3)),
        requests_per_s=float(rps.group(1)),
        percentiles=percentiles,
        non_2xx_3xx=int(non_ok.group(1)) if non_ok else 0,
        socket_errors=socket_errors,
    )


def ensure_installed() -> str:
    """The path of ``wrk``; installs Debian's package (``apt-get``) when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None:
        raise WrkError("wrk is not installed and apt-get is not available; install wrk")
    for argv in ([apt, "update", "-qq"], [apt, "install", "-y", "-qq", "wrk"]):
        done = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0:
            raise WrkError(f"{' '.join(argv)} failed:\n{done.stderr[-2000:]}")
    found = shutil.which("wrk")
    if found is None:
        raise WrkError("apt-get installed wrk but it is not on PATH")
    return found


# Cycles through the request paths listed (one per line) in the file given after `--`.
# Each wrk thread starts at its own offset so threads do not walk in lock-step.
PATHS_SCRIPT = """
local paths = {}
local i = 0
local counter = 0
function setup(thread)
  thread:set("offset", counter)
  counter = counter + 1
end
function init(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  local threads = tonumber(args[2]) or 1
  i = math.floor((tonumber(offset) or 0) * #paths / threads)
end
function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
"""


def run(
    url: str,
    *,
    connections: int,
    duration_s: float,
    threads: int = 2,
    paths: Sequence[str] | None = None,
    script: Path | None = None,
    workdir: Path,
    timeout_s: float = 10.0,
) -> WrkResult:
    """Run wrk against ``url``; ``paths``: cycle through these request paths instead;
    ``script``: a Lua script of one's own."""
    argv = [
        ensure_installed(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        f"--timeout={timeout_s:g}s",
        "--latency",
    ]
    if paths:
        workdir.mkdir(parents=True, exist_ok=True)
        script = workdir / "paths.lua"
        script.write_text(PATHS_SCRIPT)
        listing = workdir / "paths.txt"
        listing.write_text("\n".join(paths) + "\n")
        argv += ["-s", str(script), url, "--", str(listing), str(threads)]
    elif script is not None:
        argv += ["-s", str(script), url]
    else:
        argv.append(url)
    done = subprocess.run(  # noqa: S603
        argv, capture_output=True, text=True, timeout=duration_s + 60, check=False
    )
    if done.returncode != 0:
        raise WrkError(f"wrk exited with {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return parse(done.stdout)
