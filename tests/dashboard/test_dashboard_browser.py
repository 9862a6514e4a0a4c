"""The dashboard in a real headless Chromium against a real uvicorn server: what the
rendered page lists, how it rides out API failures, and a screenshot.

Chromium is a Debian package (`apt-get install -y chromium`). Without it these tests
skip locally and fail under CI=true. Set OPENDRS_SCREENSHOT_DIR to keep the screenshots."""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from fakes import cluster_scene as scene
from needs import unavailable
from opendrs.api.app import create_app
from opendrs.domain.host import Host

CHROMIUM = "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
# Virtual time: the page's one-second polling runs this long, however fast the machine.
BUDGET_MS = 4500
VOID = frozenset({"br", "hr", "img", "input", "link", "meta", "source", "wbr"})


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if found is None:
        why = "chromium is not installed (Debian: apt-get install -y chromium)"
        unavailable(why)
    return found


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Run `app` under uvicorn on a free loopback port in a thread; yield its URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    # Listening before the server starts: early connections wait in the backlog.
    sock.listen(64)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        httpx.get(url + "healthz", timeout=30).raise_for_status()
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def run_chromium(binary: str, profile: Path, url: str, *extra: str) -> str:
    command = [
        binary,
        *FLAGS,
        f"--user-data-dir={profile}",
        f"--virtual-time-budget={BUDGET_MS}",
        *extra,
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    text: str = ""
    children: list[Node] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def find_all(self, attr: str, value: str | None = None) -> list[Node]:
        found = [
            n for n in self.walk() if attr in n.attrs and (value is None or n.attrs[attr] == value)
        ]
        return found

    def find(self, attr: str, value: str | None = None) -> Node:
        found = self.find_all(attr, value)
        assert found, f"no element with {attr}={value!r}"
        return found[0]

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            yield from child.walk()

    def words(self) -> str:
        return " ".join(self.text.split())


class _DomReader(HTMLParser):
    """Just enough of a DOM from --dump-dom output: tags, attributes, inner text."""

    def __init__(self) -> None:
        super().__init__()
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        for node in self.stack:
            node.text += data


def parse(html: str) -> Node:
    reader = _DomReader()
    reader.feed(html)
    reader.close()
    return reader.root


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


class _FlakyRepositories:
    """The scene's repositories, except that listing hosts fails on the calls named."""

    def __init__(self, failing_calls: Sequence[int] | None, fail_from: int | None = None) -> None:
        self._inner = scene.populated()
        self._failing = set(failing_calls or ())
        self._fail_from = fail_from
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def list_hosts(self) -> list[Host]:
        self.calls += 1
        failing = self.calls in self._failing or (
            self._fail_from is not None and self.calls >= self._fail_from
        )
        if failing:
            raise RuntimeError("database unavailable")
        return self._inner.list_hosts()


def test_the_page_lists_hosts_alarms_and_plan_actions(chromium: str, tmp_path: Path) -> None:
    app = create_app(scene.populated(), status=scene.status)
    with serving(app) as url:
        dom = parse(run_chromium(chromium, tmp_path / "profile", url, "--dump-dom"))

    hosts = {n.attrs["data-host"]: n for n in dom.find_all("data-host")}
    assert list(hosts) == [h.name for h in scene.hosts()]
    hot = hosts["compute-02"].find("data-meter", "cpu")
    assert "hot" in hot.classes
    assert "92%" in hot.words()
    assert "hot" not in hosts["compute-01"].find("data-meter", "cpu").classes
    assert "hot" in hosts["compute-02"].find("data-meter", "ram").classes  # 90% RAM
    assert "maintenance" in hosts["compute-03"].words()
    assert "disk replacement" in hosts["compute-03"].words()

    firing = [n.attrs["data-alarm"] for n in dom.find("id", "alarms").find_all("data-alarm")]
    assert firing == ["host_silent/compute-05", "host_cpu_high/compute-02"]
    history = dom.find("id", "alarm-history").find_all("data-transition")
    assert [n.attrs["data-transition"] for n in history][:2] == [
        "host_silent/compute-05",
        "vm_memory_high/vm-03",
    ]
    assert len(history) == 5

    plans = dom.find_all("data-plan")
    assert [p.attrs["data-plan"] for p in plans] == ["plan-new", "plan-old"]  # newest first
    actions = {a.attrs["data-action"]: a for a in plans[0].find_all("data-action")}
    assert list(actions) == ["act-new-1", "act-new-2", "act-new-3"]
    first = actions["act-new-1"]
    assert "action-ongoing" in first.classes
    assert "migrate vm-05 compute-02 → compute-01" in first.words()
    assert "after #1" in actions["act-new-2"].words()
    assert "action-succeeded" in plans[1].find("data-action", "act-old-2").classes

    status = {
        n.attrs["data-key"]: [c.words() for c in n.children] for n in dom.find_all("data-key")
    }
    assert status["time"] == ["time", "2011-03-03 00:25:00"]
    assert status["step"] == ["step", "5"]
    assert status["counters.samples"] == ["samples", "12,840"]
    assert "hidden" in dom.find("id", "banner").attrs


def test_the_page_keeps_polling_through_errors_and_recovers(chromium: str, tmp_path: Path) -> None:
    repos = _FlakyRepositories(failing_calls=[1, 2])
    with serving(create_app(repos)) as url:  # type: ignore[arg-type]
        dom = parse(run_chromium(chromium, tmp_path / "profile", url, "--dump-dom"))
    assert repos.calls >= 3, "the page stopped polling after a failure"
    assert len(dom.find_all("data-host")) == 5
    assert "hidden" in dom.find("id", "banner").attrs
    assert "stale" not in dom.find("id", "hosts-section").classes


def test_the_page_shows_a_banner_and_keeps_the_last_data_when_the_api_fails(
    chromium: str, tmp_path: Path
) -> None:
    repos = _FlakyRepositories(failing_calls=None, fail_from=2)
    with serving(create_app(repos)) as url:  # type: ignore[arg-type]
        dom = parse(run_chromium(chromium, tmp_path / "profile", url, "--dump-dom"))
    assert repos.calls >= 3, "the page stopped polling after a failure"
    banner = dom.find("id", "banner")
    assert "hidden" not in banner.attrs
    assert "v1/hosts: HTTP 500 internal error (RuntimeError)" in banner.words()
    section = dom.find("id", "hosts-section")
    assert "stale" in section.classes
    assert len(section.find_all("data-host")) == 5  # the last good data stays on screen
    # The other panels are still live.
    assert "stale" not in dom.find("id", "plans-section").classes
    assert len(dom.find_all("data-plan")) == 2


@pytest.mark.parametrize(
    ("name", "width", "height", "broken"),
    [("dashboard", 1400, 1000, False), ("dashboard-api-down", 1400, 700, True)],
)
def test_screenshot(
    chromium: str, tmp_path: Path, name: str, width: int, height: int, broken: bool
) -> None:
    repos = _FlakyRepositories(None, fail_from=2) if broken else scene.populated()
    shot = tmp_path / f"{name}.png"
    with serving(create_app(repos, status=scene.status)) as url:  # type: ignore[arg-type]
        run_chromium(
            chromium,
            tmp_path / "profile",
            url,
            f"--window-size={width},{height}",
            f"--screenshot={shot}",
        )
    assert png_size(shot) == (width, height)
    assert shot.stat().st_size > 20_000  # a blank page compresses to far less
    keep = os.environ.get("OPENDRS_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / shot.name)
