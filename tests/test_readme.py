"""The README's quick start and its "In Python" snippet, run as a user runs them.

Every fenced block of those sections runs, in order: each `$ ` command of a `console` block in
bash (the `lensserve serve` one in the background, as in its own terminal, until the end), each
`python` block in a new interpreter. A block fails the test if it exits non-zero, and where the
README shows an output (the lines after a command; a `text` block right after a `python` block)
the output must match it: word for word, except that a number matches to the last digit shown
(`47514.53` matches 47514.53330123264) and spacing is free. The install command is not run.

What the test changes, and why: the server's port (a free one: `127.0.0.1:8000` is rewritten in
every block), its compilation cache (the tests' own), and its batch sizes (the smallest only:
the quick start's requests hold one to three points, and the answers do not depend on them).
`lensserve` is this repository's (`python -m service.cli`), whatever else is installed.
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.servers import free_port
from tests.service.conftest import CACHE_DIR

REPOSITORY = Path(__file__).resolve().parents[1]
README = REPOSITORY / "README.md"
SECTIONS = ("## Quick start", "### In Python")
INSTALL = re.compile(r"^(python3 -m )?pip install ")
SERVER = re.compile(r"(^|\s)lensserve serve\b")
README_URL = "127.0.0.1:8000"
NUMBER = r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?"
TOKEN = re.compile(rf"{NUMBER}|\w+|\S")


@dataclass(frozen=True)
class Step:
    kind: str  # "shell", "server" or "python"
    code: str
    shown: str | None  # the output the README shows, if any


def section(text: str, heading: str) -> str:
    """The lines under `heading` up to the next heading of the same or a higher level."""
    level = heading.split()[0]
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    end = next((i for i in range(start + 1, len(lines))
                if re.match(rf"#{{1,{len(level)}}} ", lines[i])), len(lines))
    return "\n".join(lines[start + 1:end])


def console_steps(block: str) -> list[Step]:
    """`$ ` commands (a trailing backslash continues one) and the output lines after each."""
    steps, lines = [], block.splitlines()
    i = 0
    while i < len(lines):
        assert lines[i].startswith("$ "), f"expected a `$ ` command: {lines[i]!r}"
        command = [lines[i][2:]]
        while command[-1].endswith("\\"):
            i += 1
            command.append(lines[i])
        i += 1
        shown = []
        while i < len(lines) and not lines[i].startswith("$ "):
            shown.append(lines[i])
            i += 1
        code = "\n".join(command)
        kind = "server" if SERVER.search(code) else "shell"
        if not INSTALL.match(code):
            steps.append(Step(kind, code, "\n".join(shown) if shown else None))
    return steps


def readme_steps() -> list[Step]:
    text = README.read_text()
    steps = []
    for heading in SECTIONS:
        blocks = re.findall(r"^```(\w+)\n(.*?)^```$", section(text, heading), re.M | re.S)
        for i, (language, body) in enumerate(blocks):
            if language == "console":
                steps += console_steps(body.rstrip("\n"))
            elif language == "python":
                following = blocks[i + 1] if i + 1 < len(blocks) else ("", "")
                shown = following[1].rstrip("\n") if following[0] == "text" else None
                steps.append(Step("python", body, shown))
            else:
                assert language == "text", f"a {language} block in {heading}"
    return steps


def agrees(shown: str, actual: str) -> bool:
    """`actual` says what `shown` says, numbers to the last digit `shown` gives."""
    expected, got = TOKEN.findall(shown), TOKEN.findall(actual)
    if len(expected) != len(got):
        return False
    for want, have in zip(expected, got, strict=True):
        if re.fullmatch(NUMBER, want) and re.fullmatch(NUMBER, have):
            digits = len(want.partition(".")[2]) if "." in want and "e" not in want.lower() else 0
            exact = "." not in want and "e" not in want.lower()
            if exact and want != have:
                return False
            if not exact and not math.isclose(float(have), float(want), rel_tol=1e-12,
                                              abs_tol=10.0 ** -digits):
                return False
        elif want != have:
            return False
    return True


def test_agrees_reads_numbers_to_the_digits_shown():
    assert agrees('{"log_evidence":[47514.53]}', '{"log_evidence":[47514.53330123264]}')
    assert agrees("[ 47514.53 -40465.7  -inf]", "[47514.53 -40465.70 -inf]")
    assert not agrees("47514.53", "47514.60")
    assert not agrees("(15,)", "(16,)")
    assert not agrees("ok", "ok invalid")
    assert not agrees('"ready"', '"serving"')


def test_the_readme_has_a_quick_start_to_run():
    kinds = [step.kind for step in readme_steps()]
    assert kinds.count("server") == 1 and kinds.index("server") == 0
    assert "shell" in kinds and kinds.count("python") >= 2


@pytest.fixture
def lensserve_on_path(tmp_path) -> dict[str, str]:
    """The environment the blocks run in: `lensserve` is this repository's."""
    bin_directory = tmp_path / "bin"
    bin_directory.mkdir()
    shim = bin_directory / "lensserve"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m service.cli "$@"\n')
    shim.chmod(0o755)
    environment = {k: v for k, v in os.environ.items() if k != "JAX_PLATFORMS"}  # as a user's
    python = Path(sys.executable).parent
    environment["PATH"] = os.pathsep.join([str(bin_directory), str(python), os.environ["PATH"]])
    environment["PYTHONPATH"] = str(REPOSITORY)
    return environment


def wait_until_ready(process: subprocess.Popen, url: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, f"lensserve serve exited:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"not ready:\n{log.read_text()[-3000:]}"
        try:
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)


@pytest.mark.timeout(1200)
def test_the_quick_start_runs_and_prints_what_the_readme_shows(tmp_path, lensserve_on_path):
    port = free_port()
    local = f"127.0.0.1:{port}"
    server_log = tmp_path / "server.log"
    server = None
    try:
        for step in readme_steps():
            code = step.code.replace(README_URL, local)
            if step.kind == "server":
                environment = {**lensserve_on_path, "LENSSERVE_PORT": str(port),
                               "LENSSERVE_COMPILATION_CACHE_DIR": str(CACHE_DIR),
                               "LENSSERVE_BUCKETS": "[1]"}
                with open(server_log, "w") as log:  # its own group: bash and lensserve
                    server = subprocess.Popen(["bash", "-c", code], cwd=tmp_path,
                                              env=environment, stdout=log,
                                              stderr=subprocess.STDOUT, start_new_session=True)
                wait_until_ready(server, f"http://{local}", server_log, timeout=900)
                continue
            command = ["bash", "-c", code] if step.kind == "shell" else [sys.executable, "-c", code]
            done = subprocess.run(command, cwd=tmp_path, env=lensserve_on_path,
                                  capture_output=True, text=True, timeout=900)
            assert done.returncode == 0, f"{step.code}\nfailed:\n{done.stderr[-3000:]}"
            if step.shown is not None:
                assert agrees(step.shown, done.stdout), (
                    f"{step.code}\nprinted:\n{done.stdout}\nthe README shows:\n{step.shown}")
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
    assert server is not None, "the quick start never started the server"


