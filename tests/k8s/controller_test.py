#!/usr/bin/env python3
"""`kesm controller` against the real API server of the kesm_apiserver fixture.

No kubelet and no Kafka here: the StatefulSet is an object nobody runs, the brokers are a
closed port (the lag stays stale). What is proven is the controller's side of the
StatefulSet, as a pod with the least RBAC the chart gives (get and update on
statefulsets/scale of that StatefulSet only):
  outside   outside a pod it exits 2 and says why
  seed      it starts from the replicas that run (no resize), and kill -9 leaves them
  minimum   a minimum above the running count is written; SIGTERM leaves the count
  waiting   a missing StatefulSet is Waiting in /status (not ready, nothing written) until
            it exists, then the controller starts from it

  controller_test.py --kesm BIN --k8s-dir DIR CASE
"""
import argparse
import json
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


class Api:
    def __init__(self, k8s_dir):
        env = {}
        with open(os.path.join(k8s_dir, "run", "env")) as f:
            for line in f:
                k, _, v = line.strip().partition("=")
                env[k] = v
        self.url = env["APISERVER_URL"]
        self.ca = env["APISERVER_CA_FILE"]
        self.token = open(env["APISERVER_TOKEN_FILE"]).read().strip()
        self.ctx = ssl.create_default_context(cafile=self.ca)

    def call(self, method, path, body=None, token=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + (token or self.token))
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=10) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def must(self, method, path, body=None):
        code, out = self.call(method, path, body)
        if code >= 300:
            fail(f"{method} {path}: HTTP {code}: {out}")
        return out


def statefulset(name, replicas):
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "serviceName": name,
                     "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "p", "image": "kesm"}]}}}}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Rig:
    """A namespace, a ServiceAccount with get+update on statefulsets/scale of `sts`, and its
    token in a service-account folder as a pod would have it."""

    def __init__(self, api, kesm, sts="kesm-orders"):
        self.api, self.kesm, self.sts = api, kesm, sts
        self.ns = "ctl-" + "%06x" % random.getrandbits(24)
        api.must("POST", "/api/v1/namespaces",
                 {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.ns}})
        base = f"/api/v1/namespaces/{self.ns}"
        rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{self.ns}"
        api.must("POST", base + "/serviceaccounts",
                 {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "ctl"}})
        api.must("POST", rbac + "/roles", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "ctl"},
            "rules": [{"apiGroups": ["apps"], "resources": ["statefulsets/scale"],
                       "resourceNames": [sts], "verbs": ["get", "update"]}]})
        api.must("POST", rbac + "/rolebindings", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "ctl"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "ctl"},
            "subjects": [{"kind": "ServiceAccount", "name": "ctl", "namespace": self.ns}]})
        tok = api.must("POST", base + "/serviceaccounts/ctl/token",
                       {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                        "spec": {"expirationSeconds": 3600}})["status"]["token"]
        self.dir = tempfile.mkdtemp(prefix="kesm-ctl-")
        sa = os.path.join(self.dir, "sa")
        os.mkdir(sa)
        open(os.path.join(sa, "token"), "w").write(tok)
        open(os.path.join(sa, "namespace"), "w").write(self.ns)
        with open(api.ca) as src, open(os.path.join(sa, "ca.crt"), "w") as dst:
            dst.write(src.read())
        self.env = dict(os.environ)
        host, port = api.url[len("https://"):].rsplit(":", 1)
        self.env.update(KUBERNETES_SERVICE_HOST=host, KUBERNETES_SERVICE_PORT=port,
                        KESM_SERVICE_ACCOUNT_DIR=sa)
        self.port = free_port()
        self.proc = None

    def create(self, replicas):
        self.api.must("POST", f"/apis/apps/v1/namespaces/{self.ns}/statefulsets",
                      statefulset(self.sts, replicas))

    def replicas(self):
        code, out = self.api.call(
            "GET", f"/apis/apps/v1/namespaces/{self.ns}/statefulsets/{self.sts}/scale")
        return out["spec"].get("replicas", 0) if code == 200 else None

    def config(self, minimum):
        path = os.path.join(self.dir, "kesm.yaml")
        with open(path, "w") as f:
            f.write(f"""server: {{listen: 127.0.0.1:{self.port}}}
leaderElection: {{enabled: false}}
mappings:
  - name: orders
    source: {{bootstrapServers: [127.0.0.1:1], topics: [orders]}}
    function: {{url: http://127.0.0.1:1/}}
    scaling: {{minimumPollers: {minimum}, maximumPollers: 10, evaluationInterval: 1s}}
""")
        return path

    def start(self, minimum):
        self.log = open(os.path.join(self.dir, "controller.log"), "ab")
        self.proc = subprocess.Popen([self.kesm, "controller", "--config", self.config(minimum)],
                                     env=self.env, stdout=self.log, stderr=subprocess.STDOUT)

    def get(self, path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError:
            return None, ""

    def mapping(self):
        code, body = self.get("/status")
        return json.loads(body)["mappings"][0] if code == 200 else None

    def metric(self, name):
        code, body = self.get("/metrics")
        total = 0.0
        for line in body.splitlines() if code == 200 else []:
            if line.startswith(name):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=30)
        self.proc = None
        return rc

    def close(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()
        self.api.call("DELETE", f"/api/v1/namespaces/{self.ns}")

    def dump(self):
        print(open(os.path.join(self.dir, "controller.log"), errors="replace").read()[-4000:])


def until(what, check, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def case_outside(kesm, _api):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
    env.pop("KESM_SERVICE_ACCOUNT_DIR", None)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        f.write("mappings:\n  - name: orders\n    source: {bootstrapServers: [k:9092], "
                "topics: [orders]}\n    function: {url: http://fn/}\n")
        f.flush()
        r = subprocess.run([kesm, "controller", "--config", f.name], env=env,
                           capture_output=True, text=True, timeout=30)
    if r.returncode != 2 or "runs in a Kubernetes pod" not in r.stderr:
        fail(f"outside a pod: rc {r.returncode}, stderr {r.stderr!r}")
    print("outside a pod: exit 2:", r.stderr.strip())


def case_seed(kesm, api):
    rig = Rig(api, kesm)
    try:
        rig.create(3)
        rig.start(minimum=2)
        m = until("the controller's first decision", lambda: (m := rig.mapping()) and
                  m["state"] == "Enabled" and m["pollers"]["desired"] > 0 and m)
        if m["pollers"]["desired"] != 3 or m["pollers"]["active"] != 3:
            fail(f"seeded from 3 replicas, /status says {m['pollers']}")
        # Evaluations pass (each probes the lag, which fails within 5 s here): still 3.
        until("two evaluations", lambda: rig.metric("kesm_lag_probe_failures_total") >= 2, seconds=40)
        if rig.replicas() != 3:
            fail(f"replicas changed by a start: {rig.replicas()}")
        if rig.metric('kesm_scale_writes_total') != 0:
            fail("a write was counted although nothing was to be written")
        rig.stop(signal.SIGKILL)
        rig.start(minimum=2)
        until("the restarted controller", lambda: (m := rig.mapping()) and
              m["pollers"]["desired"] == 3)
        if rig.replicas() != 3:
            fail(f"replicas after kill -9 and restart: {rig.replicas()}")
        print("seed: started over 3 replicas, kept them; kill -9 and restart kept them")
    except BaseException:
        rig.dump()
        raise
    finally:
        rig.close()


def case_minimum(kesm, api):
    rig = Rig(api, kesm)
    try:
        rig.create(1)
        rig.start(minimum=4)
        until("replicas raised to the minimum", lambda: rig.replicas() == 4)
        until("the write counted", lambda: rig.metric('kesm_scale_writes_total{mapping="orders",outcome="ok"}') == 1)
        rc = rig.stop()
        if rc != 0 or rig.replicas() != 4:
            fail(f"SIGTERM: rc {rc}, replicas {rig.replicas()} (expected 0 and 4)")
        print("minimum: 1 -> 4 written once; SIGTERM left 4")
    except BaseException:
        rig.dump()
        raise
    finally:
        rig.close()


def case_waiting(kesm, api):
    rig = Rig(api, kesm)
    try:
        rig.start(minimum=2)
        m = until("Waiting in /status", lambda: (m := rig.mapping()) and
                  m["state"] == "Waiting" and m)
        if "kesm-orders" not in m["stateReason"] or "not found" not in m["stateReason"]:
            fail(f"the reason should name the StatefulSet and say not found: {m['stateReason']}")
        if rig.get("/readyz")[0] != 503:
            fail("a controller waiting for its StatefulSet must not be ready")
        rig.create(1)
        until("the controller started from the new StatefulSet",
              lambda: (m := rig.mapping()) and m["state"] == "Enabled", seconds=30)
        until("the minimum written", lambda: rig.replicas() == 2)
        print("waiting: Waiting with the reason while missing; started once created; wrote 2")
    except BaseException:
        rig.dump()
        raise
    finally:
        rig.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--kesm", required=True)
    p.add_argument("--k8s-dir", default=os.environ.get("KESM_K8S_DIR"))
    p.add_argument("case", choices=["outside", "seed", "minimum", "waiting"])
    a = p.parse_args()
    api = Api(a.k8s_dir) if a.case != "outside" else None
    globals()["case_" + a.case](a.kesm, api)


if __name__ == "__main__":
    main()
