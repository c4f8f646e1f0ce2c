#!/usr/bin/env python3
"""Browser tests of kesm's status page (GET /), in Debian's headless Chromium.

usage: status_page_test.py --kesm BIN [--chromium BIN] [--screenshot OUT.png]
       status_page_test.py [--chromium BIN] --check-shoot tests/browser/shoot.sh

Default: starts `kesm demo` (its mock Kafka cluster and sample function) with a burst, loads
the page while the burst drains, and asserts that the page shows what /status and
/status/history give at that moment: one table row per partition with its lag and stall mark,
the mapping's state, one chart point per history sample, one row per scaling decision. Then it
saves a screenshot (1280x800) of that page.

--check-shoot: shoot.sh saves a PNG of the size asked after the page's scripts have run.
"""

import argparse
import http.server
import json
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cdp  # noqa: E402

# The demo mapping, on a free port; evaluations every 2 s so that /status holds still long
# enough to be compared with what the page rendered.
CONFIG = """\
server:
  listen: 127.0.0.1:0
mappings:
  - name: demo
    source:
      bootstrapServers: localhost:9092
      topics: [demo-orders]
      startingPosition: TRIM_HORIZON
      librdkafka:
        session.timeout.ms: 3000
    function:
      url: http://127.0.0.1:9000/
      timeout: 10s
    batching:
      batchSize: 100
      maximumBatchingWindow: 200ms
    scaling:
      minimumPollers: 1
      maximumPollers: 8
      gracePeriod: 10s
      evaluationInterval: 2s
      scaleDownStabilization: 10s
      maxConcurrentBatches: 1
"""

# What the page shows of the first mapping, read from the DOM right after it rendered.
EXTRACT = """
kesm.refresh().then(() => {
  const sec = document.querySelector("section[data-mapping]");
  const points = (c) => {
    const p = sec.querySelector("polyline." + c);
    return p ? p.getAttribute("points").split(/\\s+/).filter(Boolean).length : -1;
  };
  const reason = sec.querySelector("[data-role=reason]");
  return {
    name: sec.dataset.mapping,
    state: sec.querySelector("[data-role=state]").textContent,
    reason: reason ? reason.textContent : null,
    summary: sec.querySelector("[data-role=summary]").textContent,
    rows: [...sec.querySelectorAll("tr.partition")].map((tr) => ({
      topic: tr.dataset.topic, partition: Number(tr.dataset.partition),
      lag: Number(tr.cells[2].textContent.replaceAll(",", "")),
      stalled: tr.classList.contains("stalled"), mark: tr.cells[5].textContent})),
    points: {lag: points("lag"), desired: points("desired"), running: points("running")},
    decisions: [...sec.querySelectorAll("tr.decision")].map(
      (tr) => [...tr.cells].map((c) => c.textContent)),
    error: document.getElementById("error").textContent,
  };
})
"""


def fail(message):
    print("FAIL: " + message, file=sys.stderr)
    sys.exit(1)


def get_json(base, path):
    with urllib.request.urlopen(base + path, timeout=5) as r:
        return json.load(r)


def wait(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    fail(f"not within {timeout} s: {what}")


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        fail(f"{path} is not a PNG")
    return struct.unpack(">II", head[16:24])


def start_kesm(kesm, work):
    config = os.path.join(work, "demo.yaml")
    with open(config, "w") as f:
        f.write(CONFIG)
    log_path = os.path.join(work, "kesm.log")
    log = open(log_path, "wb")
    # 20,000 records of 1 KiB, 800 ms per batch of 100: ~125 records/s per poller, so the burst
    # takes tens of seconds to drain even with all 8 pollers.
    proc = subprocess.Popen([kesm, "demo", "--config", config, "--records", "20000",
                             "--latency", "800ms", "--partitions", "8"],
                            stdout=log, stderr=subprocess.STDOUT)

    def port():
        with open(log_path, "rb") as f:
            m = re.search(rb"/status on port (\d+)", f.read())
        if proc.poll() is not None:
            fail("kesm demo exited early:\n" + open(log_path).read())
        return int(m.group(1)) if m else None

    return proc, wait(port, 30, "kesm logs its port"), log_path


def stalled(p, stall):
    """What the page marks stalled: lag without commit progress for `stall` seconds."""
    return p["stalledSince"] is not None and p["stalledSeconds"] >= stall


def consistent(s1, s2, h1, h2, stall):
    """True when nothing the page compares changed between the two reads."""
    m1, m2 = s1["mappings"][0], s2["mappings"][0]
    key = lambda m: (m["state"], m.get("stateReason"), m["pollers"]["desired"],  # noqa: E731
                     [(p["partition"], p["lag"], p["stalledSince"], stalled(p, stall))
                      for p in m.get("lag", {}).get("partitions", [])])
    hkey = lambda h: (len(h["mappings"][0]["samples"]),  # noqa: E731
                      len(h["mappings"][0]["decisions"]))
    return key(m1) == key(m2) and hkey(h1) == hkey(h2)


def check_page(dom, status, history, stall):
    m = status["mappings"][0]
    h = history["mappings"][0]
    if dom["error"]:
        fail("the page reports an error: " + dom["error"])
    if dom["name"] != m["name"] or dom["state"] != m["state"]:
        fail(f"mapping/state: page {dom['name']}/{dom['state']}, /status {m['name']}/{m['state']}")
    if dom["reason"] != m.get("stateReason"):
        fail(f"state reason: page {dom['reason']!r}, /status {m.get('stateReason')!r}")
    want_rows = [{"topic": p["topic"], "partition": p["partition"], "lag": p["lag"],
                  "stalled": stalled(p, stall)} for p in m["lag"]["partitions"]]
    got_rows = [{k: r[k] for k in ("topic", "partition", "lag", "stalled")} for r in dom["rows"]]
    if got_rows != want_rows:
        fail(f"partition table:\n page    {got_rows}\n /status {want_rows}")
    for r in dom["rows"]:
        if r["stalled"] != r["mark"].startswith("stalled "):
            fail(f"stall mark of partition {r['partition']}: {r['mark']!r}")
    samples = h["samples"]
    want_points = {"lag": sum(1 for s in samples if s["lag"] is not None),
                   "desired": len(samples), "running": len(samples)}
    if dom["points"] != want_points:
        fail(f"chart points: page {dom['points']}, /status/history {want_points}")
    if len(dom["decisions"]) != len(h["decisions"]):
        fail(f"decision rows: page {len(dom['decisions'])}, history {len(h['decisions'])}")
    newest = h["decisions"][-1]
    if dom["decisions"][0][1:3] != [f"{newest['from']} → {newest['to']}", newest["reason"]]:
        fail(f"newest decision: page {dom['decisions'][0]}, history {newest}")
    if f"desired {m['pollers']['desired']}," not in dom["summary"]:
        fail(f"summary {dom['summary']!r} does not say desired {m['pollers']['desired']}")


def compare(browser, base, stall):
    """Loads the page with ?stall=`stall`, renders it once /status holds still, and checks it.
    Returns what the page showed and the /status it matched."""
    browser.navigate(f"{base}?stall={stall}",
                     "document.querySelector('polyline.desired') !== null")
    deadline = time.monotonic() + 60
    while True:
        s1, h1 = get_json(base, "status"), get_json(base, "status/history")
        dom = browser.evaluate(EXTRACT)
        s2, h2 = get_json(base, "status"), get_json(base, "status/history")
        if consistent(s1, s2, h1, h2, stall):
            break
        if time.monotonic() > deadline:
            fail("/status never held still for one page refresh")
    check_page(dom, s1, h1, stall)
    if s1["mappings"][0]["lag"]["total"] <= 0:
        fail("compared after the burst had drained: lag 0, a weak comparison")
    return dom, s1["mappings"][0]


def status_page(args):
    with tempfile.TemporaryDirectory(prefix="kesm-browser-") as work:
        proc, port, log_path = start_kesm(args.kesm, work)
        base = f"http://127.0.0.1:{port}/"
        try:
            # The burst is on, the controller has scaled up for it and the new pollers drain.
            def scaled_up():
                h = get_json(base, "status/history")["mappings"][0]
                running = get_json(base, "status")["mappings"][0]["pollers"]["running"]
                return running >= 2 and any(d["reason"] == "scale_up" for d in h["decisions"])
            wait(scaled_up, 120, "a scale-up decision and 2 pollers running")
            # --settle: a longer history on the page (for the screenshot in the docs).
            settle_until = time.monotonic() + args.settle
            while time.monotonic() < settle_until:
                time.sleep(0.5)

            started = time.monotonic()
            with cdp.Browser(args.chromium, 1280, 800) as browser:
                # A huge threshold first: the same rows, none marked, though /status has
                # partitions without progress; then the test's threshold: some marked.
                dom, m = compare(browser, base, 100000)
                loaded = time.monotonic() - started
                since = sum(p["stalledSince"] is not None for p in m["lag"]["partitions"])
                if since == 0 or any(r["stalled"] for r in dom["rows"]):
                    fail(f"?stall=100000: {since} partitions with stalledSince, page {dom['rows']}")
                dom, m = compare(browser, base, args.stall)
                if not any(r["stalled"] for r in dom["rows"]):
                    fail(f"?stall={args.stall}: no partition marked stalled: {dom['rows']}")
                if args.screenshot:
                    browser.screenshot(args.screenshot)
                    if png_size(args.screenshot) != (1280, 800):
                        fail(f"screenshot size {png_size(args.screenshot)}")
            print(f"first page compared {loaded:.1f} s after Chromium started; matched "
                  f"/status: lag "
                  f"{m['lag']['total']}, {len(dom['rows'])} partitions ({since} with stalledSince, "
                  f"none marked at ?stall=100000, {sum(r['stalled'] for r in dom['rows'])} at "
                  f"?stall={args.stall}), "
                  f"{dom['points']['desired']} samples, {len(dom['decisions'])} decisions, "
                  f"state {dom['state']}")
            if args.screenshot:
                print(f"screenshot: {args.screenshot} ({os.path.getsize(args.screenshot)} bytes)")
        except SystemExit:
            print(open(log_path).read()[-4000:], file=sys.stderr)
            raise
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def check_shoot(args):
    """shoot.sh on a page whose script fetches /data after 500 ms: the PNG has the size asked,
    and the fetch arrived (the page's scripts ran before the shot)."""
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            body = (b"<!doctype html><body><p id=p>waiting</p><script>setTimeout(() => "
                    b"fetch('/data').then(r => r.text()).then(t => p.textContent = t), 500)"
                    b"</script>") if self.path == "/" else b"fetched"
            self.send_response(200)
            self.send_header("Content-Type", "text/html" if self.path == "/" else "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory(prefix="kesm-shoot-") as work:
        out = os.path.join(work, "shot.png")
        started = time.monotonic()
        subprocess.run([args.check_shoot, f"http://127.0.0.1:{server.server_port}/", out,
                        "800", "600", "2000"], check=True, timeout=90,
                       env=dict(os.environ, CHROMIUM=args.chromium))
        took = time.monotonic() - started
        if png_size(out) != (800, 600):
            fail(f"PNG size {png_size(out)}, asked 800x600")
        if "/data" not in seen:
            fail(f"the page's script did not run before the shot: requests {seen}")
        print(f"shoot.sh: 800x600 PNG of {os.path.getsize(out)} bytes in {took:.1f} s")
    server.shutdown()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kesm")
    parser.add_argument("--chromium", default="chromium")
    parser.add_argument("--screenshot")
    parser.add_argument("--check-shoot", metavar="SHOOT_SH")
    parser.add_argument("--stall", type=int, default=1,
                        help="the page's ?stall= threshold: low, so that partitions waiting for "
                             "their poller during the burst are marked")
    parser.add_argument("--settle", type=float, default=0,
                        help="seconds to let the burst drain before loading the page")
    args = parser.parse_args()
    if args.check_shoot:
        check_shoot(args)
    elif args.kesm:
        status_page(args)
    else:
        parser.error("--kesm or --check-shoot is required")


if __name__ == "__main__":
    main()
