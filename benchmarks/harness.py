"""Shared pieces of the benchmarks: emulators in their own process, engine runs in a child
process (so peak RSS is the engine's alone), and the results table in README.md."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"


@contextmanager
def emulator_process(platform: str, *options: str) -> Iterator[tuple[str, int]]:
    """Run `salync emulate PLATFORM` in its own process; yield its base URL and pid (to read
    the emulator's CPU time)."""
    command = [sys.executable, "-m", "salync_core", "emulate", platform, *options]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        try:
            yield url, process.pid
        finally:
            process.terminate()


@contextmanager
def emulator(platform: str, *options: str) -> Iterator[str]:
    """Run `salync emulate PLATFORM` in its own process; yield its base URL."""
    with emulator_process(platform, *options) as (url, _):
        yield url


def admin(base_url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """Call an emulator's admin API (`/_emulator/...` at the server root)."""
    root = base_url.split("/", 3)
    url = f"{root[0]}//{root[2]}/_emulator/{path}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.loads(response.read())


def run_child(script: Path, *args: str) -> dict[str, Any]:
    """Run ``script --child ARGS`` and return the JSON it prints last."""
    result = subprocess.run(
        [sys.executable, str(script), "--child", *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"child failed:\n{result.stdout}\n{result.stderr}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_section(name: str, text: str) -> None:
    """Replace the text between ``<!-- name -->`` markers in README.md."""
    content = README.read_text(encoding="utf-8")
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    block = f"{start}\n{text}{end}"
    if start in content:
        content = re.sub(
            re.escape(start) + ".*?" + re.escape(end), lambda _: block, content, flags=re.S
        )
    else:
        content += f"\n{block}\n"
    README.write_text(content, encoding="utf-8")
