"""Open a report in headless Chromium, offline, and watch it: console errors, requests, screenshots.

Used by the browser test (``tests/test_report_browser.py``) and ``make screenshot``. Only the standard library
(and Pillow, which matplotlib already depends on, to read screenshots).

Why the DevTools protocol over ``--remote-debugging-pipe`` (and not ``--enable-logging`` + ``--dump-dom``):
the pipe gives every console call and uncaught exception as a structured event (``Runtime.consoleAPICalled``,
``Runtime.exceptionThrown``, ``Log.entryAdded``) and every request the page starts (``Network.requestWillBeSent``)
with its URL, so nothing depends on parsing Chromium's log lines, whose format changes between versions. The pipe
(file descriptors 3 and 4, messages separated by NUL) needs no port and no websocket client.

Networking is disabled twice: every connection goes to a dead proxy (``--proxy-server=127.0.0.1:9``) and every
host name resolves to nothing (``--host-resolver-rules``), so a request that tries to leave the machine fails
AND is recorded as a request to a non-``file:`` URL.
"""

from __future__ import annotations

import base64
import fcntl
import io
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

INSTALL_HINT = "apt-get update && apt-get install -y chromium"
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome:", "chrome-error:", "devtools:")


class BrowserError(RuntimeError):
    """Chromium could not be started or did not answer."""


def find_chromium() -> str | None:
    """Path of a Chromium binary (``$CHROMIUM``, ``chromium``, ``chromium-browser``, ``google-chrome``) or None."""
    env = os.environ.get("CHROMIUM")
    if env and shutil.which(env):
        return shutil.which(env)
    if os.access("/usr/lib/chromium/chromium", os.X_OK):  # Debian's binary, without its shell launcher
        return "/usr/lib/chromium/chromium"
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def chromium_flags(user_dir: str, width: int, height: int) -> list[str]:
    """Headless, software WebGL (SwiftShader), no sandbox (root in containers), no network."""
    return ["--headless", "--no-sandbox", "--use-gl=swiftshader", "--use-angle=swiftshader",
            "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist", "--remote-debugging-pipe",
            f"--user-data-dir={user_dir}", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
            "--host-resolver-rules=MAP * ~NOTFOUND", "--no-first-run", "--no-default-browser-check",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
            "--disable-dev-shm-usage", f"--window-size={width},{height}", "about:blank"]


class Browser:
    """A headless Chromium driven over the DevTools pipe, with one page.

    Use as a context manager. ``console_errors`` and ``requests`` collect what the page did since the last
    :meth:`open`.
    """

    def __init__(self, width: int = 1280, height: int = 900, binary: str | None = None, timeout: float = 60.0):
        self.binary = binary or find_chromium()
        if self.binary is None:
            raise BrowserError(f"chromium not found; install it with: {INSTALL_HINT}")
        self.width, self.height, self.timeout = width, height, timeout
        self._id = 0
        self._events: queue.Queue = queue.Queue()
        self._replies: dict[int, dict] = {}
        self._cond = threading.Condition()
        self.console_errors: list[str] = []
        self.console_all: list[str] = []
        self.requests: list[str] = []
        self.failed: list[str] = []
        self.session: str | None = None

    # ------------------------------------------------------------------------------ process and protocol
    def __enter__(self) -> "Browser":
        self._tmp = tempfile.mkdtemp(prefix="pointlens-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire_pipes():  # in the child: the protocol's fds 3 (commands in) and 4 (replies out)
            # copies numbered >= 5 first, so dup2 never maps an fd onto itself (that would keep close-on-exec)
            # nor overwrites the other end before it is copied
            a = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 5)
            b = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 5)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self._log = open(Path(self._tmp) / "chromium.log", "wb")
        self.proc = subprocess.Popen([self.binary, *chromium_flags(self._tmp, self.width, self.height)],
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
                                     preexec_fn=wire_pipes, close_fds=False)
        os.close(to_child_r)
        os.close(from_child_w)
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()
        try:
            self._attach()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _attach(self) -> None:
        targets = self.send("Target.getTargets")["targetInfos"]
        page = next((t for t in targets if t["type"] == "page"), None)
        if page is None:
            page_id = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        else:
            page_id = page["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": page_id, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False})

    def __exit__(self, *exc) -> None:
        try:
            if self.proc.poll() is None:
                try:
                    self.send("Browser.close", session=False, timeout=5)
                except BrowserError:
                    pass
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        finally:
            for fd in (self._to_child, self._from_child):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._log.close()
            shutil.rmtree(self._tmp, ignore_errors=True)

    def _read_loop(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_child, 1 << 20)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cond:
                    self._replies[-1] = {"closed": True}
                    self._cond.notify_all()
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "id" in msg:
                    with self._cond:
                        self._replies[msg["id"]] = msg
                        self._cond.notify_all()
                else:
                    self._on_event(msg)

    def _on_event(self, msg: dict) -> None:
        method, p = msg.get("method"), msg.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            self.console_all.append(f"{p.get('type')}: {text}")
            if p.get("type") in ("error", "assert"):
                self.console_errors.append(text)
        elif method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            self.console_errors.append(d.get("exception", {}).get("description") or d.get("text", "exception"))
        elif method == "Log.entryAdded":
            e = p.get("entry", {})
            self.console_all.append(f"log {e.get('level')}: {e.get('text')} {e.get('url', '')}")
            if e.get("level") == "error":
                self.console_errors.append(f"{e.get('text')} {e.get('url', '')}".strip())
        elif method == "Network.requestWillBeSent":
            self.requests.append(p.get("request", {}).get("url", ""))
        elif method == "Network.loadingFailed":
            self.failed.append(f"{p.get('errorText')} ({p.get('requestId')})")
        self._events.put(msg)

    def send(self, method: str, params: dict | None = None, *, session: bool = True,
             timeout: float | None = None) -> dict:
        """Send one protocol command and wait for its result (raises :class:`BrowserError` on error)."""
        self._id += 1
        mid = self._id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        data = json.dumps(msg).encode() + b"\0"
        try:
            os.write(self._to_child, data)
        except OSError as e:
            raise BrowserError(f"chromium closed the pipe ({e}); log: {self.log_tail()}") from None
        deadline = time.monotonic() + (timeout or self.timeout)
        with self._cond:
            while mid not in self._replies:
                if -1 in self._replies:
                    raise BrowserError(f"chromium exited; log: {self.log_tail()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BrowserError(f"no answer to {method} within {timeout or self.timeout} s")
                self._cond.wait(left)
            reply = self._replies.pop(mid)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def log_tail(self, n: int = 2000) -> str:
        try:
            return (Path(self._tmp) / "chromium.log").read_text(errors="replace")[-n:]
        except OSError:
            return ""

    # ------------------------------------------------------------------------------------------ the page
    def evaluate(self, expression: str, await_promise: bool = False):
        """Evaluate JavaScript in the page; returns its value (JSON-able results only)."""
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                           "awaitPromise": await_promise})
        if "exceptionDetails" in r:
            raise BrowserError(f"javascript error in {expression[:80]!r}: "
                               f"{r['exceptionDetails'].get('exception', {}).get('description')}")
        return r.get("result", {}).get("value")

    def open(self, url: str, ready: str = "document.readyState === 'complete'", timeout: float = 45.0) -> float:
        """Navigate to ``url`` and wait until the JavaScript expression ``ready`` is true; returns seconds."""
        self.console_errors, self.console_all, self.requests, self.failed = [], [], [], []
        t0 = time.monotonic()
        self.send("Page.navigate", {"url": url})
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            try:
                if self.evaluate(f"Boolean({ready})"):
                    return time.monotonic() - t0
            except BrowserError:
                pass  # the new document is not there yet
            time.sleep(0.1)
        raise BrowserError(f"{url}: not ready ({ready}) within {timeout} s; console: {self.console_all[-5:]}")

    def screenshot(self, clip: dict | None = None) -> bytes:
        """PNG bytes of the viewport, or of ``clip`` = ``{x, y, width, height}`` in page coordinates."""
        params: dict = {"format": "png"}
        if clip is not None:
            params["clip"] = {**clip, "scale": 1}
            params["captureBeyondViewport"] = True
        return base64.b64decode(self.send("Page.captureScreenshot", params)["data"])

    def settle(self) -> None:
        """Wait until the report's redraws are done (``pointlensPending == 0``) and two frames have painted."""
        deadline = time.monotonic() + self.timeout
        while self.evaluate("window.pointlensPending || 0") and time.monotonic() < deadline:
            time.sleep(0.05)
        self.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))",
                      await_promise=True)

    def element_screenshot(self, selector: str, index: int = 0) -> bytes:
        """PNG of the ``index``-th element matching the CSS ``selector`` (scrolled into view first)."""
        rect = self.evaluate(
            f"(() => {{const e = document.querySelectorAll({json.dumps(selector)})[{int(index)}]; if (!e) return null;"
            "e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            "return {x: r.left + window.scrollX, y: r.top + window.scrollY, width: r.width, height: r.height};})()")
        if not rect or rect["width"] < 1 or rect["height"] < 1:
            raise BrowserError(f"no visible element {selector!r} number {index}")
        self.settle()
        return self.screenshot(rect)

    def full_page_screenshot(self, width: int | None = None, max_height: int = 6000) -> bytes:
        """PNG of the whole page (up to ``max_height`` pixels tall)."""
        h = int(self.evaluate("document.documentElement.scrollHeight") or self.height)
        return self.screenshot({"x": 0, "y": 0, "width": width or self.width, "height": min(h, max_height)})


def offsite_requests(urls: list[str]) -> list[str]:
    """The URLs that would leave the machine (anything but file:, data:, blob:, about:, ...)."""
    return [u for u in urls if not u.startswith(LOCAL_SCHEMES)]


def pixel_stats(png: bytes) -> dict:
    """``{"std": luminance standard deviation, "ink": share of pixels differing from the most common colour}``.

    A blank region (one background colour) has ``std == 0`` and ``ink == 0``.
    """
    import numpy as np
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int32)
    flat = img.reshape(-1, 3)
    lum = flat @ np.array([299, 587, 114]) / 1000.0
    codes = (flat[:, 0] << 16) | (flat[:, 1] << 8) | flat[:, 2]
    values, counts = np.unique(codes, return_counts=True)
    background = values[counts.argmax()]
    return {"std": float(lum.std()), "ink": float((codes != background).mean()),
            "width": int(img.shape[1]), "height": int(img.shape[0])}


def pixel_difference(a: bytes, b: bytes) -> float:
    """Share of pixels whose colour differs between two same-size PNGs (1.0 if the sizes differ)."""
    import numpy as np
    from PIL import Image

    x = np.asarray(Image.open(io.BytesIO(a)).convert("RGB")).astype(np.int32)
    y = np.asarray(Image.open(io.BytesIO(b)).convert("RGB")).astype(np.int32)
    if x.shape != y.shape:
        return 1.0
    return float((np.abs(x - y).sum(-1) > 24).mean())


READY = "window.pointlensReady === true && window.pointlensPending === 0"
HIDE_MODEBAR = ("(() => {const s = document.createElement('style');"
                "s.textContent = '.modebar-container{display:none !important}';"
                "document.head.appendChild(s); return true;})()")


def screenshot_report(report, out, selector: str | None = ".pl-grid", width: int = 1280, margin: int = 16) -> Path:
    """Write a PNG of a report (``make screenshot``): the element ``selector`` with ``margin`` pixels around it and
    the heading above it, or the top of the page when ``selector`` is None or absent.

    Raises:
        BrowserError: Chromium is missing, the page logged an error or tried to reach the network.
    """
    report = Path(report).resolve()
    if not report.is_file():
        raise BrowserError(f"{report}: no such report (run `make demo` first)")
    with Browser(width=width, height=1000) as b:
        b.open(report.as_uri(), ready=READY, timeout=120)
        b.evaluate(HIDE_MODEBAR)
        b.settle()
        if b.console_errors or offsite_requests(b.requests):
            raise BrowserError(f"{report}: console errors {b.console_errors}, "
                               f"off-machine requests {offsite_requests(b.requests)}")
        rect = None
        if selector:
            rect = b.evaluate(
                f"(() => {{const e = document.querySelector({json.dumps(selector)}); if (!e) return null;"
                "let top = e; for (let p = e.previousElementSibling; p; p = p.previousElementSibling) "
                "{ if (/^H[23]$/.test(p.tagName)) { top = p; break; } }"
                "top.scrollIntoView(); const a = top.getBoundingClientRect(), r = e.getBoundingClientRect();"
                "return {x: Math.min(a.left, r.left) + scrollX, y: a.top + scrollY,"
                " width: Math.max(a.right, r.right) - Math.min(a.left, r.left), height: r.bottom - a.top};})()")
        b.settle()
        if rect:
            clip = {"x": max(0, rect["x"] - margin), "y": max(0, rect["y"] - margin),
                    "width": rect["width"] + 2 * margin, "height": rect["height"] + 2 * margin}
            png = b.screenshot(clip)
        else:
            png = b.screenshot({"x": 0, "y": 0, "width": width, "height": 1000})
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_bytes(png)
    tmp.replace(out)
    return out


def _main(argv=None) -> int:
    import argparse
    import sys

    p = argparse.ArgumentParser(prog="python -m pointlens.report.browser",
                                description="PNG of a pointlens report in headless Chromium (offline)",
                                epilog="example: python -m pointlens.report.browser demo_out/report.html "
                                       "docs/img/demo_report.png")
    p.add_argument("report", help="report.html to open")
    p.add_argument("out", help="PNG to write")
    p.add_argument("--selector", default=".pl-grid", help="CSS selector of the part to show (default: the 3D "
                                                           "views); 'none' = the top of the page")
    args = p.parse_args(argv)
    try:
        path = screenshot_report(args.report, args.out, None if args.selector == "none" else args.selector)
    except BrowserError as e:
        print(f"screenshot: error: {e}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(_main())
