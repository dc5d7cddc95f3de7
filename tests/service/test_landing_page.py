"""The page at `/` in headless Chromium, from a real server, with the network limited to
loopback: it describes the served model, its curl lines work as copied, and Chromium's own
network log (--log-net-log) shows that the page asked for nothing but 127.0.0.1 (no CDN,
font, analytics or Google Tag Manager frame, as BentoML's Swagger page had) and that no
connection went anywhere else. Screenshots: reports/landing-<preset>.png."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image, ImageChops

from tests.servers import Server

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
REPORTS = ROOT / "reports"
CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium package is missing: scripts/setup-system.sh installs it")
LOOPBACK = "127.0.0.1"
# Chromium, isolated: names resolve to nothing but 127.0.0.1, so a request to anywhere else
# can be attempted (and is then in the net log) but cannot leave the machine. Two of the
# browser's own start-up requests are turned off or kept on loopback: the network time
# query, and the component updater's check (sent to the closed port 9 of loopback).
ISOLATED = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--no-pings",
    f"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE {LOOPBACK}",
    "--disable-features=NetworkTimeServiceQuerying",
    f"--component-updater=url-source=http://{LOOPBACK}:9/",
]
# What Chromium 156 still asks for by itself at start-up, whatever the page, by the traffic
# annotation it logs: never from the page (initiator "not an origin") and, with the rules
# above, never resolved or connected. Anything else off loopback fails the test.
BROWSER_OWN = {35565745: "accounts.google.com/ListAccounts (Google sign-in cookie check)"}
BROWSER_INITIATOR = "not an origin"
SCREEN_WIDTH = 1280


@dataclass
class Request:
    url: str
    initiator: str | None  # the origin that asked; "not an origin" when the browser did
    annotation: int | None  # Chromium's traffic annotation: which feature asked

    @property
    def host(self) -> str | None:
        return urlsplit(self.url).hostname


@dataclass
class Traffic:
    """What one Chromium run's net log shows of its network use."""

    requests: list[Request] = field(default_factory=list)
    tcp_connects: set[str] = field(default_factory=set)  # addresses a TCP connect tried
    udp_peers: dict[int, str] = field(default_factory=dict)  # UDP socket -> address
    udp_sent: set[int] = field(default_factory=set)  # UDP sockets that sent a datagram

    def off_loopback(self) -> list[Request]:
        return [r for r in self.requests if r.host != LOOPBACK]

    def from_page_off_loopback(self) -> list[Request]:
        """Requests the page (or a frame of it) asked for, to anywhere but loopback."""
        return [r for r in self.off_loopback() if r.initiator != BROWSER_INITIATOR]

    def unexplained(self) -> list[Request]:
        """Requests off loopback that are not the browser's own known start-up requests."""
        return [r for r in self.off_loopback() if r.initiator != BROWSER_INITIATOR
                or r.annotation not in BROWSER_OWN]

    def reached_off_loopback(self) -> list[str]:
        """Addresses off loopback that a TCP connect tried or a UDP datagram went to
        (a UDP connect that sends nothing is Chromium's IPv6 route probe: no packet)."""
        tcp = {a for a in self.tcp_connects if not _loopback(a)}
        udp = {self.udp_peers[s] for s in self.udp_sent if not _loopback(self.udp_peers[s])}
        return sorted(tcp | udp)


def _loopback(address: str) -> bool:
    return address.rsplit(":", 1)[0] == LOOPBACK


def read_netlog(path: Path) -> Traffic:
    text = path.read_text()
    try:
        log = json.loads(text)
    except json.JSONDecodeError:  # a log not closed on exit: its events are all there
        log = json.loads(text.rstrip().rstrip(",") + "]}")
    names = {number: name for name, number in log["constants"]["logEventTypes"].items()}
    traffic = Traffic()
    annotations: dict[int, int] = {}
    for event in log["events"]:
        kind, params = names.get(event["type"]), event.get("params") or {}
        source = event["source"]["id"]
        if kind == "REQUEST_ALIVE" and "traffic_annotation" in params:
            annotations[source] = params["traffic_annotation"]
        elif kind == "URL_REQUEST_START_JOB" and "url" in params:
            traffic.requests.append(Request(params["url"], params.get("initiator"),
                                            annotations.get(source)))
        elif kind == "TCP_CONNECT_ATTEMPT" and "address" in params:
            traffic.tcp_connects.add(params["address"])
        elif kind == "UDP_CONNECT" and "address" in params:
            traffic.udp_peers[source] = params["address"]
        elif kind == "UDP_BYTES_SENT":
            traffic.udp_sent.add(source)
    return traffic


def chromium(url: str, tmp: Path, name: str, *args: str) -> tuple[str, Traffic]:
    """Load `url` in a fresh, isolated headless Chromium: (its stdout, its net log)."""
    assert CHROMIUM is not None
    netlog = tmp / f"{name}-netlog.json"
    result = subprocess.run(
        [CHROMIUM, *ISOLATED, f"--user-data-dir={tmp / f'{name}-profile'}",
         f"--log-net-log={netlog}", "--virtual-time-budget=10000", *args, url],
        capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout, read_netlog(netlog)


def assert_loopback_only(traffic: Traffic, page: str) -> None:
    """The page asked for nothing off loopback, nothing reached anywhere else, and the only
    other names in the log are the browser's own known start-up requests."""
    assert any(r.url == page for r in traffic.requests), "the log has no request for the page"
    assert traffic.from_page_off_loopback() == []
    assert traffic.unexplained() == []
    assert traffic.reached_off_loopback() == []


def trim_to_page(shot: Path) -> int:
    """Crop the window's empty background below the page; return where the page ends."""
    with Image.open(shot) as image:
        rgb = image.convert("RGB")
    background = Image.new("RGB", rgb.size, rgb.getpixel((0, rgb.height - 1)))
    box = ImageChops.difference(rgb, background).getbbox()
    assert box is not None, "the screenshot is one colour"
    rgb.crop((0, 0, rgb.width, min(rgb.height, box[3] + 24))).save(shot)
    return box[3]


class Page(HTMLParser):
    """The text of a page and of each of its <pre> blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.pre: list[str] = []
        self._in_pre = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "pre":
            self._in_pre = True
            self.pre.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "pre":
            self._in_pre = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_pre:
            self.pre[-1] += data


def example_record(url: str) -> dict:
    """The model's example record, as the OpenAPI document gives it."""
    schemas = httpx.get(f"{url}/docs.json", timeout=10).json()["components"]["schemas"]
    return next(v["example"] for k, v in schemas.items() if k.endswith("Record"))


@needs_chromium
def test_the_network_log_check_sees_a_third_party_request(tmp_path: Path) -> None:
    """The check is not vacuous: a page that asks a third party is caught, by name."""
    page = ("data:text/html,<link rel=stylesheet href='https://fonts.googleapis.com/css'>"
            "<img src='http://third-party.example/pixel.png'>"
            "<iframe src='https://www.googletagmanager.com/ns.html?id=GTM-X'></iframe>")
    _, traffic = chromium(page, tmp_path, "canary")
    asked = {r.host for r in traffic.from_page_off_loopback()}
    assert asked == {"fonts.googleapis.com", "third-party.example",
                     "www.googletagmanager.com"}, traffic.requests
    assert {r.host for r in traffic.unexplained()} == asked
    assert traffic.reached_off_loopback() == []  # the resolver rules held
    own = {r.url.split("?")[0] for r in traffic.off_loopback()
           if r.initiator == BROWSER_INITIATOR}
    print(f"\nChromium's own start-up requests (never resolved): {sorted(own)}")


@needs_chromium
@pytest.mark.parametrize("server_fixture", ["heart_server", "diabetes_server"])
def test_the_landing_page_describes_the_model_and_requests_nothing_off_loopback(
        server_fixture: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    server: Server = request.getfixturevalue(server_fixture)
    preset = server.dataset.spec.name
    url = server.url + "/"
    info = httpx.get(f"{server.url}/model_info", timeout=10).json()
    name, version = info["model_name"], info["model_version"]

    raw = httpx.get(url, timeout=10)
    assert raw.status_code == 200 and raw.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in raw.headers["content-security-policy"]
    for text in ("BentoML Team", "googletagmanager", "swagger", "<script", "<iframe"):
        assert text.lower() not in raw.text.lower(), text
    head = httpx.head(url, timeout=10)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == raw.headers["content-length"]

    # The OpenAPI document names this model too, not BentoML's boilerplate.
    doc_info = httpx.get(f"{server.url}/docs.json", timeout=10).json()["info"]
    assert doc_info["title"] == name and doc_info["version"] == version
    assert "contact" not in doc_info and "BentoML" not in json.dumps(doc_info)

    # The page as Chromium builds it.
    dom, traffic = chromium(url, tmp_path, "dom", "--dump-dom")
    assert_loopback_only(traffic, url)
    page = Page()
    page.feed(dom)
    text = "".join(page.text)
    assert name in text and f"version {version}" in text
    assert " ".join(server.dataset.spec.description.split()) in " ".join(text.split())
    for feature in server.dataset.spec.features:
        assert feature.name in text
    for metric in info["holdout_metrics"]:
        assert metric in text
    assert "BentoML Team" not in dom and "googletagmanager" not in dom

    # Each curl line works as copied, and /predict's sends the model's own example record.
    example = example_record(server.url)
    commands = [p for p in page.pre if p.startswith("curl ")]
    routes = [shlex.split(c.replace("\\\n", ""))[4].removeprefix(server.url) for c in commands]
    assert routes == ["/predict", "/predict_batch", f"/v2/models/{name}/infer"]
    predict = shlex.split(commands[0].replace("\\\n", ""))
    assert json.loads(predict[predict.index("-d") + 1]) == example
    for command in commands:
        if shutil.which("curl"):
            ran = subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                                 timeout=30)
            assert ran.returncode == 0, ran.stderr
            answer = json.loads(ran.stdout)
        else:
            args = shlex.split(command.replace("\\\n", ""))
            answer = httpx.post(args[4], content=args[args.index("-d") + 1],
                                headers={"Content-Type": "application/json"}, timeout=30).json()
        answers = answer.get("predictions", [answer])  # /predict_batch: one per record
        assert answers and answers[0].get("model_version") == version, (command, answer)

    # What a user sees, with the same isolation.
    REPORTS.mkdir(exist_ok=True)
    shot = REPORTS / f"landing-{preset}.png"
    shot.unlink(missing_ok=True)
    height = 2400 + 100 * len(server.dataset.spec.features)  # more than the page needs
    _, traffic = chromium(url, tmp_path, "shot", f"--screenshot={shot}",
                          f"--window-size={SCREEN_WIDTH},{height}", "--hide-scrollbars")
    assert_loopback_only(traffic, url)
    # The page is one request: no script, style sheet, font, image or frame, nor a favicon.
    assert [r.url for r in traffic.requests if r.initiator != BROWSER_INITIATOR] == []
    bottom = trim_to_page(shot)
    assert bottom < height - 20, "the page is longer than the window: raise `height`"
    assert bottom > 1500 and shot.stat().st_size > 50_000  # a page, not an empty window
    print(f"\nscreenshot of {name} {version}: {shot}")
