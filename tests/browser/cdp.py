"""A headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe):
JSON messages separated by NUL bytes on fds 3 (to the browser) and 4 (from it). No websocket
client needed, stdlib only. Every call has a deadline."""

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time


class CdpError(Exception):
    pass


def _high_fd(fd):
    """The same pipe end on a descriptor >= 10, clear of the 3 and 4 Chromium is given."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


class Browser:
    """One Chromium process with one page, attached. Use as a context manager."""

    def __init__(self, chromium, width=1280, height=800):
        self.profile = tempfile.mkdtemp(prefix="kesm-chromium-")
        to_r, self.to_w = map(_high_fd, os.pipe())
        self.from_r, from_w = map(_high_fd, os.pipe())
        args = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                f"--user-data-dir={self.profile}", "--no-first-run", "--no-default-browser-check",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                # Only loopback: every host name resolves to nothing.
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
                f"--window-size={width},{height}", "--remote-debugging-pipe", "about:blank"]
        self.log = open(os.path.join(self.profile, "chromium.log"), "wb")
        # bash puts the pipe ends on fds 3 and 4, where Chromium expects them.
        self.proc = subprocess.Popen(
            ["bash", "-c", f'exec "$@" 3<&{to_r} 4>&{from_w} {to_r}<&- {from_w}>&-', "bash", *args],
            pass_fds=(to_r, from_w), stdout=self.log, stderr=self.log)
        os.close(to_r)
        os.close(from_w)
        self.buffer = b""
        self.next_id = 0
        self.session = None
        try:
            self._attach()
            # The window size flag does not reach a page opened this way: set the viewport.
            self.send("Emulation.setDeviceMetricsOverride",
                      {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        except Exception:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.send("Browser.close", timeout=5, session=False)
        except (CdpError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self.to_w, self.from_r):
            try:
                os.close(fd)
            except OSError:
                pass
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def send(self, method, params=None, timeout=30, session=True):
        """Sends one command (to the page's session unless session=False) and returns its
        result; events read meanwhile are dropped."""
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self.to_w, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" not in self.buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self.from_r], [], [], left)[0]:
                    raise CdpError(f"{method}: no answer within {timeout} s")
                chunk = os.read(self.from_r, 1 << 16)
                if not chunk:
                    raise CdpError(f"{method}: the browser closed the pipe")
                self.buffer += chunk
            raw, self.buffer = self.buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise CdpError(f"{method}: {reply['error']}")
                return reply["result"]

    def _attach(self, timeout=30):
        """Attaches to the page target (flat session mode)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pages = [t for t in self.send("Target.getTargets", session=False)["targetInfos"]
                     if t["type"] == "page"]
            if pages:
                self.session = self.send("Target.attachToTarget",
                                         {"targetId": pages[0]["targetId"], "flatten": True},
                                         session=False)["sessionId"]
                return
            time.sleep(0.1)
        raise CdpError("no page target")

    def navigate(self, url, ready_expression="true", timeout=30):
        """Loads `url` and waits until the page is loaded and `ready_expression` is true."""
        result = self.send("Page.navigate", {"url": url}, timeout=timeout)
        if result.get("errorText"):
            raise CdpError(f"cannot load {url}: {result['errorText']}")
        self.wait_for(f"document.readyState === 'complete' && location.href === {json.dumps(url)}"
                      f" && ({ready_expression})", timeout)

    def wait_for(self, expression, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.evaluate(expression, timeout=max(1, deadline - time.monotonic())):
                    return
            except CdpError as e:
                if "context" not in str(e) or time.monotonic() > deadline:
                    raise  # anything but a page between two documents
            if time.monotonic() > deadline:
                raise CdpError(f"not true within {timeout} s: {expression}")
            time.sleep(0.1)

    def evaluate(self, expression, timeout=30):
        """The value of a JavaScript expression in the page (a promise is awaited)."""
        result = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True}, timeout=timeout)
        if "exceptionDetails" in result:
            raise CdpError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path):
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
