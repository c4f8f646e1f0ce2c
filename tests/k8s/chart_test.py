#!/usr/bin/env python3
"""tests/k8s/chart_test.py -- the Helm chart deploy/helm/kesm proven with helm, kesm and a
real Kubernetes API server (tests/k8s/apiserver.sh). One check per call, one ctest each:

  chart_test.py --env ENV_FILE [--kesm BIN] CHECK

  lint         helm lint --strict and helm template, default values and every ci/*.yaml;
               helm package carries the files the symlinks in files/ point to
  render       what the rendered objects say (ports, probes, security, grace period, PDB,
               RBAC, lease name, PrometheusRule and dashboard ConfigMap...), and the values
               the chart must refuse (schema, guards)
  app-version  Chart.yaml appVersion is `kesm version`                         (needs --kesm)
  validate     every values file's ConfigMap kesm.yaml passes `kesm validate`, each file it
               names is under a mounted Secret; a config kesm refuses is caught (needs --kesm)
  dry-run      every rendered object, for every values file, is created with
               ?dryRun=All&fieldValidation=Strict; broken objects are refused
  install      helm install / upgrade (the config checksum changes) / rollback / uninstall
  rbac         the ServiceAccount's token (TokenRequest API) can do exactly what the Role
               allows; everything else is 403

ENV_FILE is $KESM_K8S_DIR/run/env (APISERVER_URL, APISERVER_TOKEN_FILE, APISERVER_CA_FILE,
KUBECONFIG, HELM). Every check uses a fresh namespace (no controller-manager: a deleted
namespace stays Terminating, so none is deleted). Exit 0 pass, 1 fail, 77 when part of a
check could not run (validate with a kesm that does not know leaderElection yet).
"""
import argparse
import copy
import glob
import json
import os
import re
import secrets
import shutil
import ssl
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request

import yaml

REPO = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))
CHART = os.path.join(REPO, "deploy", "helm", "kesm")
CRDS = os.path.join(REPO, "tests", "k8s", "crds")
RULES = os.path.join(REPO, "deploy", "prometheus", "rules.yaml")
DASHBOARD = os.path.join(REPO, "deploy", "grafana", "kesm.json")
DRY = "?dryRun=All&fieldValidation=Strict&fieldManager=kesm-chart-test"

# The REST collection of each kind the chart renders (namespaced ones).
COLLECTIONS = {
    ("v1", "ConfigMap"): "/api/v1/namespaces/{ns}/configmaps",
    ("v1", "Service"): "/api/v1/namespaces/{ns}/services",
    ("v1", "ServiceAccount"): "/api/v1/namespaces/{ns}/serviceaccounts",
    ("apps/v1", "Deployment"): "/apis/apps/v1/namespaces/{ns}/deployments",
    ("rbac.authorization.k8s.io/v1", "Role"): "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
    ("policy/v1", "PodDisruptionBudget"): "/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets",
    ("networking.k8s.io/v1", "NetworkPolicy"): "/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "/apis/monitoring.coreos.com/v1/namespaces/{ns}/servicemonitors",
    ("monitoring.coreos.com/v1", "PodMonitor"): "/apis/monitoring.coreos.com/v1/namespaces/{ns}/podmonitors",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "/apis/monitoring.coreos.com/v1/namespaces/{ns}/prometheusrules",
}

FAILURES = []


def check(cond, what):
    """Records a failed assertion (the check goes on, so one run lists every failure)."""
    print(("  ok   " if cond else "  FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)
    return cond


def log(msg):
    print(msg, flush=True)


def values_files():
    """(label, path or None for the defaults), the defaults first."""
    files = sorted(glob.glob(os.path.join(CHART, "ci", "*.yaml")))
    return [("default values", None)] + [("ci/" + os.path.basename(f), f) for f in files]


class Env:
    def __init__(self, path, kesm):
        self.vars = {}
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#") and "=" in line:
                    k, v = line.split("=", 1)
                    self.vars[k] = v
        self.url = self.vars["APISERVER_URL"]
        with open(self.vars["APISERVER_TOKEN_FILE"]) as f:
            self.admin_token = f.read().strip()
        self.ssl = ssl.create_default_context(cafile=self.vars["APISERVER_CA_FILE"])
        self.helm_bin = self.vars["HELM"]
        self.kesm = kesm
        # helm keeps its caches, config and repositories here, never in $HOME.
        self.tmp = tempfile.mkdtemp(prefix="kesm-chart-test.")
        self.helm_env = dict(os.environ, KUBECONFIG=self.vars["KUBECONFIG"],
                             HELM_CACHE_HOME=f"{self.tmp}/helm/cache",
                             HELM_CONFIG_HOME=f"{self.tmp}/helm/config",
                             HELM_DATA_HOME=f"{self.tmp}/helm/data")

    def kube_version(self):
        """The API server's version, for `helm template --kube-version` (this helm is built
        without the ldflags that set its default, so it would assume v1.20.0)."""
        if not hasattr(self, "_kube_version"):
            st, body = self.req("GET", "/version")
            if st != 200:
                raise SystemExit(f"GET /version: HTTP {st} {body}")
            self._kube_version = body["gitVersion"]
        return self._kube_version

    def close(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- HTTP
    def req(self, method, path, body=None, token=None, ctype="application/json"):
        """(status, parsed JSON or text). Never raises on an HTTP status."""
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            data = data.encode() if isinstance(data, str) else data
        r = urllib.request.Request(self.url + path, data=data, method=method)
        r.add_header("Authorization", "Bearer " + (token or self.admin_token))
        r.add_header("Accept", "application/json")
        if data is not None:
            r.add_header("Content-Type", ctype)
        try:
            with urllib.request.urlopen(r, context=self.ssl, timeout=30) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def namespace(self, prefix):
        name = f"{prefix}-{secrets.token_hex(3)}"
        st, body = self.req("POST", "/api/v1/namespaces",
                            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        if st != 201:
            raise SystemExit(f"cannot create namespace {name}: HTTP {st} {body}")
        return name

    # ---- helm
    def helm(self, *args, expect_ok=True):
        p = subprocess.run([self.helm_bin, *args], env=self.helm_env, capture_output=True,
                           text=True, timeout=300)
        if expect_ok and p.returncode != 0:
            log(f"  $ helm {' '.join(args)}\n{p.stdout}{p.stderr}")
        return p

    def template(self, release, ns, values_file=None, extra=(), expect_ok=True):
        args = ["template", release, CHART, "--namespace", ns, "--kube-version", self.kube_version()]
        if values_file:
            args += ["-f", values_file]
        p = self.helm(*args, *extra, expect_ok=expect_ok)
        docs = [d for d in yaml.safe_load_all(p.stdout) if d] if p.returncode == 0 else []
        return p, docs


def default_config():
    with open(os.path.join(CHART, "values.yaml")) as f:
        return yaml.safe_load(f)["config"]


def config_file(env, change):
    """A values file holding the default `config` changed by change(cfg) (helm's --set would
    replace the whole mappings list rather than change one key of it)."""
    cfg = default_config()
    change(cfg)
    fd, path = tempfile.mkstemp(suffix=".yaml", dir=env.tmp)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump({"config": cfg}, f, sort_keys=False)
    return path


def by_kind(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def one(docs, kind):
    found = by_kind(docs, kind)
    return found[0] if len(found) == 1 else None


def rendered_config(docs):
    """kesm's config: the ConfigMap with kesm.yaml (the dashboard's is another ConfigMap)."""
    cms = [d for d in by_kind(docs, "ConfigMap") if "kesm.yaml" in (d.get("data") or {})]
    return yaml.safe_load(cms[0]["data"]["kesm.yaml"]) if len(cms) == 1 else None


# ------------------------------------------------------------------------------------- lint
def cmd_lint(env):
    for label, f in values_files():
        extra = ["-f", f] if f else []
        p = env.helm("lint", "--strict", CHART, *extra)
        check(p.returncode == 0 and "0 chart(s) failed" in p.stdout,
              f"helm lint --strict, {label}")
        p, docs = env.template("lint", "kesm-lint", f)
        check(p.returncode == 0 and len(docs) >= 4,
              f"helm template, {label}: {len(docs)} objects "
              f"({', '.join(sorted(d['kind'] for d in docs))})")
    # files/ holds symlinks to deploy/prometheus/rules.yaml and deploy/grafana/kesm.json:
    # the packaged chart must carry their contents.
    p = env.helm("package", CHART, "-d", env.tmp)
    archive = os.path.join(env.tmp, f"kesm-{chart_meta()['version']}.tgz")
    if check(p.returncode == 0 and os.path.exists(archive), "helm package"):
        with tarfile.open(archive) as t, open(RULES, "rb") as r, open(DASHBOARD, "rb") as d:
            files = {m.name: m for m in t.getmembers()}
            same = all(n in files and files[n].isfile() and t.extractfile(files[n]).read() == want
                       for n, want in [("kesm/files/prometheus-rules.yaml", r.read()),
                                       ("kesm/files/grafana-dashboard.json", d.read())])
        check(same, "the packaged chart holds deploy/prometheus/rules.yaml and "
              "deploy/grafana/kesm.json as files (the symlinks followed)")


# ----------------------------------------------------------------------------------- render
def container(docs):
    return one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]


def cmd_render(env):
    ns = "kesm-render"
    log("default values:")
    p, docs = env.template("shop", ns)
    if not check(p.returncode == 0, "renders"):
        return
    kinds = sorted(d["kind"] for d in docs)
    check(kinds == sorted(["ConfigMap", "Deployment", "PodDisruptionBudget", "Role",
                           "RoleBinding", "Service", "ServiceAccount"]),
          f"objects are ConfigMap Deployment PodDisruptionBudget Role RoleBinding Service "
          f"ServiceAccount: {kinds}")
    dep = one(docs, "Deployment")
    pod = dep["spec"]["template"]["spec"]
    c = container(docs)
    check(dep["metadata"]["name"] == "shop-kesm", "fullname is <release>-kesm")
    check(dep["spec"]["replicas"] == 2, "2 replicas")
    check(c["args"] == ["run", "--config", "/etc/kesm/kesm.yaml"], f"args {c['args']}")
    check(c["image"] == f"kesm:{chart_meta()['appVersion']}", f"image {c['image']} (tag = appVersion)")
    check(c["ports"] == [{"name": "http", "containerPort": 9464, "protocol": "TCP"}],
          "container port 9464 named http")
    check(c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}, "liveness /healthz")
    check(c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}, "readiness /readyz")
    check(c["startupProbe"]["httpGet"]["path"] == "/healthz", "startup probe /healthz")
    check({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
          in c["env"], "POD_NAME from the downward API")
    sc = c["securityContext"]
    check(sc.get("runAsNonRoot") is True and sc.get("runAsUser") == 65532
          and sc.get("readOnlyRootFilesystem") is True
          and sc.get("allowPrivilegeEscalation") is False
          and sc.get("capabilities") == {"drop": ["ALL"]}
          and sc.get("seccompProfile") == {"type": "RuntimeDefault"},
          "container securityContext: non-root 65532, read-only root, no escalation, "
          "drop ALL, seccomp RuntimeDefault")
    check(set(c["resources"]) == {"requests", "limits"}, "resources: requests and limits")
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    vols = {v["name"]: v for v in pod["volumes"]}
    check("/tmp" in mounts and "emptyDir" in vols[mounts["/tmp"]["name"]], "/tmp is an emptyDir")
    check(mounts.get("/etc/kesm", {}).get("readOnly") is True
          and vols["config"]["configMap"]["name"] == "shop-kesm", "config mounted from the ConfigMap")
    check(pod["serviceAccountName"] == "shop-kesm" and pod["automountServiceAccountToken"] is True,
          "the chart's ServiceAccount, token automounted")
    check(pod["terminationGracePeriodSeconds"] == 80,
          f"terminationGracePeriodSeconds 30s grace + 30s timeout + 20 = 80: "
          f"{pod['terminationGracePeriodSeconds']}")
    ann = dep["spec"]["template"]["metadata"]["annotations"]
    check(re.fullmatch(r"[0-9a-f]{64}", ann.get("checksum/config", "")) is not None,
          "checksum/config annotation")
    cfg = rendered_config(docs)
    check(cfg["leaderElection"] == {"leaseName": "shop-kesm"},
          f"leaderElection.leaseName injected: {cfg.get('leaderElection')}")
    role = one(docs, "Role")
    check(role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
         "resourceNames": ["shop-kesm"], "verbs": ["get", "update"]}],
        "Role: leases create; get, update of the one Lease")
    rb = one(docs, "RoleBinding")
    check(rb["subjects"] == [{"kind": "ServiceAccount", "name": "shop-kesm", "namespace": ns}]
          and rb["roleRef"]["name"] == "shop-kesm", "RoleBinding: the ServiceAccount to the Role")
    pdb = one(docs, "PodDisruptionBudget")
    check(pdb["spec"]["maxUnavailable"] == 1
          and pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow", "PDB maxUnavailable 1")
    svc = one(docs, "Service")
    check(svc["spec"]["ports"] == [{"name": "http", "port": 9464, "targetPort": "http",
                                    "protocol": "TCP"}], "Service port 9464 -> http")
    check(svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"],
          "Service selects the Deployment's pods")

    log("a lease name of the user's own is kept, and the Role names it:")
    _, docs = env.template("shop", ns, extra=["--set", "config.leaderElection.leaseName=mine"])
    check(rendered_config(docs)["leaderElection"]["leaseName"] == "mine"
          and one(docs, "Role")["rules"][1]["resourceNames"] == ["mine"], "leaseName mine kept")
    _, docs = env.template("shop", ns, extra=["--set", "config.leaderElection.namespace=infra"])
    check(one(docs, "Role")["metadata"]["namespace"] == "infra"
          and one(docs, "RoleBinding")["subjects"][0]["namespace"] == ns,
          "leaderElection.namespace: the Role in that namespace, bound to the release's SA")

    log("the config's user-facing changes roll the pods; others do not:")
    base = dep["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    renamed = config_file(env, lambda c: c["mappings"][0].update(name="other"))
    _, docs = env.template("shop", ns, renamed)
    check(one(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
          != base, "a config change changes checksum/config")
    _, docs = env.template("shop", ns, extra=["--set", "resources.limits.cpu=2"])
    check(one(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
          == base, "a resources change keeps checksum/config")

    for label, f, expect in [
            ("single replica, no election", "single-replica-no-election-values.yaml",
             dict(replicas=1, tgps=120, pdb=False, role=False)),
            ("two mappings", "two-mappings-values.yaml",
             dict(replicas=3, tgps=110, pdb=True, role=True, port=8080, lease="kesm-shop-leader")),
            ("mTLS", "mtls-values.yaml", dict(replicas=2, tgps=230, pdb=True, role=True)),
            ("monitoring and NetworkPolicy", "monitoring-netpol-values.yaml",
             dict(replicas=2, tgps=80, pdb=True, role=True))]:
        log(f"ci/{f} ({label}):")
        _, docs = env.template("shop", ns, os.path.join(CHART, "ci", f))
        pod = one(docs, "Deployment")["spec"]["template"]["spec"]
        check(one(docs, "Deployment")["spec"]["replicas"] == expect["replicas"],
              f"replicas {expect['replicas']}")
        check(pod["terminationGracePeriodSeconds"] == expect["tgps"],
              f"terminationGracePeriodSeconds {expect['tgps']}: {pod['terminationGracePeriodSeconds']}")
        check(bool(by_kind(docs, "PodDisruptionBudget")) == expect["pdb"], f"PDB present: {expect['pdb']}")
        check(bool(by_kind(docs, "Role")) == expect["role"] and
              bool(by_kind(docs, "RoleBinding")) == expect["role"], f"Role and RoleBinding: {expect['role']}")
        if "port" in expect:
            check(container(docs)["ports"][0]["containerPort"] == expect["port"],
                  f"container port from server.listen: {expect['port']}")
        if f.startswith("two-mappings"):
            check(all(d["metadata"]["labels"].get("cost-center") == "shop-42" for d in docs)
                  and one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]["cost-center"] == "shop-42",
                  "commonLabels on every object and the pods")
        if "lease" in expect:
            check(one(docs, "Role")["rules"][1]["resourceNames"] == [expect["lease"]],
                  f"Role names the config's lease {expect['lease']}")
        if f.startswith("monitoring"):
            check(len(by_kind(docs, "ServiceMonitor")) == 1 and len(by_kind(docs, "PodMonitor")) == 1
                  and len(by_kind(docs, "NetworkPolicy")) == 1, "ServiceMonitor, PodMonitor, NetworkPolicy")
            tsc = pod["topologySpreadConstraints"][0]
            check(tsc["labelSelector"]["matchLabels"] == one(docs, "Deployment")["spec"]["selector"]["matchLabels"],
                  "topologySpreadConstraints: labelSelector filled in")
            np = one(docs, "NetworkPolicy")
            check(np["spec"]["policyTypes"] == ["Ingress", "Egress"]
                  and np["spec"]["egress"][-1]["ports"][0]["port"] == 53, "egress rules + DNS")

    log("ci/sasl-scram-secret-values.yaml: the Secrets are read-only files, nothing else:")
    _, docs = env.template("shop", ns, os.path.join(CHART, "ci", "sasl-scram-secret-values.yaml"))
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    vols = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container(docs)["volumeMounts"]}
    creds = vols.get(mounts.get("/var/run/secrets/kafka", {}).get("name"), {}).get("secret", {})
    check(creds == {"secretName": "kafka-creds", "defaultMode": 0o440, "optional": False,
                    "items": [{"key": "password", "path": "password"}]}
          and mounts["/var/run/secrets/kafka"]["readOnly"] is True,
          f"Secret kafka-creds: key password, mode 0440, read-only at /var/run/secrets/kafka: {creds}")
    ca = vols.get(mounts.get("/var/run/secrets/kafka-ca", {}).get("name"), {}).get("secret", {})
    check(ca.get("secretName") == "kafka-ca" and "items" not in ca, "Secret kafka-ca: every key")
    check(not by_kind(docs, "Secret"), "the chart creates no Secret")

    render_rules_and_dashboard(env, ns)

    log("values the chart refuses (helm template fails, saying why):")
    refused = [
        ("a misspelt top-level value (replicaCont)", ["--set", "replicaCont=2"], "replicaCont"),
        ("a misspelt nested value (image.tagg)", ["--set", "image.tagg=x"], "tagg"),
        ("a misspelt value in a section (podDisruptionBudget.maxUnavaliable)",
         ["--set", "podDisruptionBudget.maxUnavaliable=1"], "maxUnavaliable"),
        ("a wrong type (replicaCount: two)", ["--set-string", "replicaCount=two"], "replicaCount"),
        ("config without mappings", ["--set", "config.mappings=null"], "mappings"),
        ("config missing", ["--set", "config=null"], "config"),
        ("an unknown pull policy", ["--set", "image.pullPolicy=Sometimes"], "pullPolicy"),
        ("a kafkaSecrets entry without mountPath", ["--set", "kafkaSecrets[0].name=x"], "mountPath"),
        ("2 replicas with leader election off", ["--set", "config.leaderElection.enabled=false"],
         "leaderElection.enabled false"),
        ("a loopback listen address", ["--set", "config.server.listen=127.0.0.1:9464"], "loopback"),
        ("an override of an alert that does not exist (prometheusRule.alerts.KesmLagGrowin)",
         ["--set", "prometheusRule.enabled=true", "--set", "prometheusRule.alerts.KesmLagGrowin.disabled=true"],
         "KesmLagGrowin: no such alert"),
        ("a misspelt key of an alert override (prometheusRule.alerts.KesmDown.fr)",
         ["--set", "prometheusRule.alerts.KesmDown.fr=1m"], "fr"),
        ("an alert override's for that is not a duration (10 minutes)",
         ["--set", "prometheusRule.alerts.KesmDown.for=10 minutes"], "for"),
        ("a misspelt grafanaDashboard key (lable)", ["--set", "grafanaDashboard.lable=x"], "lable"),
        ("a grace period that is not a duration (30)",
         ["-f", config_file(env, lambda c: c["mappings"][0]["scaling"].update(gracePeriod=30))],
         "not a duration"),
    ]
    for what, extra, needle in refused:
        p, _ = env.template("shop", ns, extra=extra, expect_ok=False)
        msg = next((l for l in p.stderr.splitlines() if "Error" in l or " at '" in l), p.stderr.strip())
        check(p.returncode != 0 and needle in p.stderr, f"{what}: {msg[:200]}")
    p = env.helm("install", "shop", CHART, "-n", ns, "--dry-run=client", "--set", "replicaCont=2",
                 expect_ok=False)
    check(p.returncode != 0 and "replicaCont" in p.stderr,
          "helm install refuses replicaCont too: " + (p.stderr.strip().splitlines() or [""])[-1][:160])


def render_rules_and_dashboard(env, ns):
    """The PrometheusRule and the dashboard ConfigMap: the files of deploy/ as they are, and
    the overrides of prometheusRule.*."""
    with open(RULES) as f:
        rules = yaml.safe_load(f)
    with open(DASHBOARD, encoding="utf-8", newline="") as f:
        dashboard = f.read()
    alerts = [r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r]

    log("ci/rules-dashboard-values.yaml (PrometheusRule and dashboard):")
    _, docs = env.template("shop", ns, os.path.join(CHART, "ci", "rules-dashboard-values.yaml"))
    pr = one(docs, "PrometheusRule")
    check(pr is not None and pr["spec"]["groups"] == rules["groups"],
          f"PrometheusRule spec.groups are deploy/prometheus/rules.yaml's groups "
          f"({sum(len(g['rules']) for g in rules['groups'])} rules)")
    check(pr is not None and pr["metadata"]["name"] == "shop-kesm"
          and pr["metadata"]["labels"].get("release") == "prometheus",
          "PrometheusRule shop-kesm with prometheusRule.labels")
    cms = [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"] == "shop-kesm-dashboard"]
    cm = cms[0] if len(cms) == 1 else None
    check(cm is not None and cm["data"] == {"kesm.json": dashboard},
          f"ConfigMap shop-kesm-dashboard: data kesm.json is deploy/grafana/kesm.json byte for "
          f"byte ({len(dashboard.encode())} bytes)")
    check(cm is not None and cm["metadata"]["labels"].get("grafana_dashboard") == "1"
          and cm["metadata"].get("annotations") == {"grafana_folder": "Kafka"},
          "dashboard ConfigMap: label grafana_dashboard \"1\", grafanaDashboard.annotations")
    sm = one(docs, "ServiceMonitor")
    check(sm["spec"]["jobLabel"] == "app.kubernetes.io/name"
          and one(docs, "Service")["metadata"]["labels"]["app.kubernetes.io/name"] == "kesm",
          "ServiceMonitor: job from the Service's app.kubernetes.io/name (kesm), as KesmDown expects")
    check(sm["spec"]["endpoints"][0]["interval"] == "15s", "ServiceMonitor interval 15s by default")

    log("prometheusRule overrides:")
    fd, path = tempfile.mkstemp(suffix=".yaml", dir=env.tmp)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump({
            "nameOverride": "esm",
            "podMonitor": {"enabled": True},
            "grafanaDashboard": {"enabled": True, "label": "dashboards", "labelValue": "kesm"},
            "prometheusRule": {
                "enabled": True, "additionalRuleLabels": {"team": "data", "severity": "none"},
                "runbookBaseUrl": "https://wiki.example/kesm/",
                "alerts": {"KesmPollersAtMaximum": {"disabled": True},
                           "KesmLagGrowing": {"for": "30m", "severity": "info"},
                           "KesmPartitionStalled": {"expr": "kesm_partition_stalled_seconds > 900"}}}},
            f)
    _, docs = env.template("shop", ns, path)
    pr = one(docs, "PrometheusRule")
    got = {r.get("alert") or r["record"] + str(r.get("labels", {})): r
           for g in (pr["spec"]["groups"] if pr else []) for r in g["rules"]}
    want = {r.get("alert") or r["record"] + str(r.get("labels", {})): r
            for g in rules["groups"] for r in g["rules"]}
    check(set(got) == set(want) - {"KesmPollersAtMaximum"}, "a disabled alert is left out, nothing else")
    lag = got.get("KesmLagGrowing", {})
    check(lag.get("for") == "30m" and lag.get("labels") == {"severity": "info", "team": "data"},
          f"KesmLagGrowing: for 30m, severity info: {lag.get('for')} {lag.get('labels')}")
    check(got.get("KesmPartitionStalled", {}).get("expr") == "kesm_partition_stalled_seconds > 900",
          "KesmPartitionStalled: expr replaced")
    check(all(got[a]["labels"]["team"] == "data" and got[a]["labels"]["severity"] == (
              "info" if a == "KesmLagGrowing" else want[a]["labels"]["severity"])
              for a in alerts if a in got),
          "additionalRuleLabels on every alert; an alert's own severity wins over them")
    check(all("labels" not in r or "team" not in r["labels"] for k, r in got.items() if "alert" not in r),
          "recording rules keep their labels (the dashboard selects by them)")
    check(all(got[a]["annotations"]["runbook_url"] ==
              "https://wiki.example/kesm/" + want[a]["annotations"]["runbook_url"] for a in alerts if a in got),
          "runbook_url prefixed with runbookBaseUrl")
    check(got.get("KesmDown", {}).get("expr") == want["KesmDown"]["expr"].replace('job="kesm"', 'job="esm"')
          and one(docs, "PodMonitor")["spec"]["jobLabel"] == "app.kubernetes.io/name",
          f"nameOverride esm: KesmDown matches job=\"esm\" (the monitors' job): {got.get('KesmDown', {}).get('expr')}")
    cm = next((d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-dashboard")), None)
    check(cm is not None and cm["metadata"]["labels"].get("dashboards") == "kesm"
          and "grafana_dashboard" not in cm["metadata"]["labels"],
          "grafanaDashboard.label/labelValue: the sidecar's label is configurable")


def chart_meta():
    with open(os.path.join(CHART, "Chart.yaml")) as f:
        return yaml.safe_load(f)


# ------------------------------------------------------------------------------ app-version
def cmd_app_version(env):
    out = subprocess.run([env.kesm, "version"], capture_output=True, text=True).stdout.strip()
    app = chart_meta()["appVersion"]
    check(out == f"kesm {app}", f"Chart.yaml appVersion {app!r} matches `kesm version`: {out!r}")


# --------------------------------------------------------------------------------- validate
FILE_KEYS = ("passwordFile", "usernameFile", "caFile", "certificateFile", "keyFile", "keyPasswordFile")
ENV_KEYS = ("passwordEnv", "usernameEnv", "keyPasswordEnv")


def walk(node, path=""):
    """(path, key, value) of every scalar under node."""
    if isinstance(node, dict):
        for k, v in node.items():
            if isinstance(v, (dict, list)):
                yield from walk(v, f"{path}.{k}" if path else k)
            else:
                yield path, k, v, node
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, f"{path}[{i}]")


def pem_pair(d):
    key, crt = os.path.join(d, "k.pem"), os.path.join(d, "c.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-subj", "/CN=kesm-chart-test", "-days", "1", "-keyout", key, "-out", crt],
                   check=True, capture_output=True)
    return key, crt


def kesm_validate(env, cfg, extra_env):
    path = os.path.join(env.tmp, "kesm.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
    p = subprocess.run([env.kesm, "validate", "--config", path], capture_output=True, text=True,
                       env=dict(os.environ, **extra_env), timeout=60)
    return p


def knows_leader_election(env):
    """Whether this kesm reads the config section leaderElection (issue 15 adds it)."""
    probe = {"mappings": [{"name": "m", "source": {"bootstrapServers": "k:9092", "topics": ["t"]},
                           "function": {"url": "http://f:8080/"}}],
             "leaderElection": {"leaseName": "probe"}}
    p = kesm_validate(env, probe, {})
    return not (p.returncode == 2 and "leaderElection: unknown key" in p.stderr)


SKIPPED = []


def cmd_validate(env):
    key, crt = pem_pair(env.tmp)
    strip_le = not knows_leader_election(env)
    if strip_le:
        SKIPPED.append("this kesm predates the config section leaderElection: the rendered "
                       "configs were validated without it")
        log(f"NOTE: {SKIPPED[-1]}")
    for label, f in values_files():
        log(f"{label}:")
        p, docs = env.template("shop", "kesm-validate", f)
        if not check(p.returncode == 0, "renders"):
            continue
        cfg = rendered_config(docs)
        c = container(docs)
        mounts = [m["mountPath"].rstrip("/") + "/" for m in c.get("volumeMounts", [])]
        env_names = {e["name"] for e in c.get("env", [])}
        # Each file the config names must be under a mount of the pod; here it becomes a
        # local file of the right kind so kesm can read it.
        local = copy.deepcopy(cfg)
        fake_env = {}
        for path, k, v, parent in list(walk(local)):
            if k in FILE_KEYS:
                check(any(str(v).startswith(m) for m in mounts),
                      f"{path}.{k} {v} is under a volume mount of the container")
                if k == "caFile" or k == "certificateFile":
                    parent[k] = crt
                elif k == "keyFile":
                    parent[k] = key
                else:
                    secret = os.path.join(env.tmp, k)
                    with open(secret, "w") as sf:
                        sf.write("not-a-real-secret\n")
                    parent[k] = secret
            elif k in ENV_KEYS:
                check(v in env_names, f"{path}.{k} {v} is set in the container's env")
                fake_env[v] = "not-a-real-secret"
        if strip_le:
            local.pop("leaderElection", None)
        p = kesm_validate(env, local, fake_env)
        check(p.returncode == 0 and "valid" in p.stdout,
              f"kesm validate: exit {p.returncode} {(p.stdout + p.stderr).strip()[:400]}")
    log("the check can fail: a config kesm refuses (batching.batchsize)")
    bad = config_file(env, lambda c: c["mappings"][0].update(batching={"batchsize": 5}))
    _, docs = env.template("shop", "kesm-validate", bad)
    cfg = rendered_config(docs)
    if strip_le:
        cfg.pop("leaderElection", None)
    p = kesm_validate(env, cfg, {})
    check(p.returncode == 2 and "batchsize" in p.stderr,
          f"kesm validate refuses it: exit {p.returncode} {p.stderr.strip()[:200]}")


# ---------------------------------------------------------------------------------- dry-run
def ensure_crds(env):
    """Creates the monitoring.coreos.com CRDs once (409 from a parallel test is fine) and waits
    until they are served."""
    for path in sorted(glob.glob(os.path.join(CRDS, "*.yaml"))):
        with open(path) as f:
            crd = yaml.safe_load(f)
        st, body = env.req("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        if st not in (201, 409):
            raise SystemExit(f"creating CRD {crd['metadata']['name']}: HTTP {st} {body}")
        name = crd["metadata"]["name"]
        deadline = time.monotonic() + 60
        while True:
            st, body = env.req("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
            status = (body.get("status") if isinstance(body, dict) else None) or {}
            conds = {c["type"]: c["status"] for c in status.get("conditions") or []}
            plural = crd["spec"]["names"]["plural"]
            st2, _ = env.req("GET", f"/apis/monitoring.coreos.com/v1/{plural}")
            if conds.get("Established") == "True" and st2 == 200:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"CRD {name} not established within 60 s: {conds}")
            time.sleep(0.2)


def dry_create(env, ns, obj):
    key = (obj["apiVersion"], obj["kind"])
    if key not in COLLECTIONS:
        return 0, f"no collection known for {key}: add it to COLLECTIONS"
    return env.req("POST", COLLECTIONS[key].format(ns=obj["metadata"].get("namespace", ns)) + DRY, obj)


def message(body):
    return body.get("message", "") if isinstance(body, dict) else str(body)


def cmd_dry_run(env):
    ensure_crds(env)
    for label, f in values_files():
        ns = env.namespace("chart-dry")
        p, docs = env.template("shop", ns, f)
        log(f"{label} (namespace {ns}):")
        if not check(p.returncode == 0, "renders"):
            continue
        for d in docs:
            if d["metadata"].get("namespace", ns) != ns:   # e.g. a Role in leaderElection.namespace
                d = copy.deepcopy(d)
                d["metadata"]["namespace"] = ns
            st, body = dry_create(env, ns, d)
            check(200 <= st < 300, f"{d['kind']} {d['metadata']['name']}: HTTP {st} {message(body)[:300]}")
        st, _ = env.req("GET", f"/api/v1/namespaces/{ns}/configmaps/shop-kesm")
        check(st == 404, f"the dry run stored nothing (GET the ConfigMap: {st})")

    log("broken objects are refused (the check can fail):")
    ns = env.namespace("chart-dry-broken")
    _, docs = env.template("shop", ns, os.path.join(CHART, "ci", "monitoring-netpol-values.yaml"))
    dep = copy.deepcopy(one(docs, "Deployment"))
    dep["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    broken = [("Deployment with an unknown field (containers[0].imagePullPolicyy)", dep)]
    dep = copy.deepcopy(one(docs, "Deployment"))
    dep["spec"]["selector"]["matchLabels"] = {"app": "other"}
    broken.append(("Deployment whose selector does not match its pod labels", dep))
    dep = copy.deepcopy(one(docs, "Deployment"))
    dep["spec"]["replicas"] = "two"
    broken.append(("Deployment with a wrong type (replicas: \"two\")", dep))
    sm = copy.deepcopy(one(docs, "ServiceMonitor"))
    sm["spec"]["endpoints"][0]["portt"] = "http"
    broken.append(("ServiceMonitor with an unknown field (endpoints[0].portt), CRD schema", sm))
    _, rule_docs = env.template("shop", ns, os.path.join(CHART, "ci", "rules-dashboard-values.yaml"))
    pr = copy.deepcopy(one(rule_docs, "PrometheusRule"))
    pr["spec"]["groups"][1]["rules"][0]["alertt"] = "KesmLagGrowing"
    broken.append(("PrometheusRule with an unknown field (groups[1].rules[0].alertt), CRD schema", pr))
    pr = copy.deepcopy(one(rule_docs, "PrometheusRule"))
    pr["spec"]["groups"][1]["rules"][0]["for"] = "10 minutes"
    broken.append(("PrometheusRule with a for that is not a duration (10 minutes), CRD schema", pr))
    role = copy.deepcopy(one(docs, "Role"))
    role["rules"][0]["verb"] = ["create"]
    broken.append(("Role with an unknown field (rules[0].verb)", role))
    for what, obj in broken:
        st, body = dry_create(env, ns, obj)
        check(not 200 <= st < 300, f"{what}: refused, HTTP {st} {message(body)[:240]}")


# ---------------------------------------------------------------------------------- install
def objects_of(env, ns, manifest_docs):
    """{(kind, name): HTTP status of GET} for every object of a release's manifest."""
    out = {}
    for d in manifest_docs:
        coll = COLLECTIONS[(d["apiVersion"], d["kind"])].format(ns=d["metadata"].get("namespace", ns))
        st, _ = env.req("GET", f"{coll}/{d['metadata']['name']}")
        out[(d["kind"], d["metadata"]["name"])] = st
    return out


def deployment(env, ns, name):
    st, body = env.req("GET", f"/apis/apps/v1/namespaces/{ns}/deployments/{name}")
    return body if st == 200 else None


def configmap_yaml(env, ns, name):
    st, body = env.req("GET", f"/api/v1/namespaces/{ns}/configmaps/{name}")
    return yaml.safe_load(body["data"]["kesm.yaml"]) if st == 200 else None


def cmd_install(env):
    ns = env.namespace("chart-install")
    rel = "shop"
    log(f"helm install {rel} (namespace {ns}):")
    p = env.helm("install", rel, CHART, "-n", ns)
    if not check(p.returncode == 0, "helm install exits 0"):
        return
    check("kubectl" in p.stdout and "/status" in p.stdout and "holderIdentity" in p.stdout,
          "NOTES tell how to see /status and which pod leads")
    manifest = [d for d in yaml.safe_load_all(env.helm("get", "manifest", rel, "-n", ns).stdout) if d]
    present = objects_of(env, ns, manifest)
    check(len(present) == 7 and all(st == 200 for st in present.values()),
          f"every object of the release exists: {sorted(f'{k[0]}/{k[1]}' for k in present)}")
    dep = deployment(env, ns, "shop-kesm")
    sum1 = dep["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    log("helm upgrade with a changed config:")
    more = config_file(env, lambda c: c["mappings"][0]["scaling"].update(maximumPollers=16))
    p = env.helm("upgrade", rel, CHART, "-n", ns, "--reuse-values", "-f", more)
    check(p.returncode == 0, "helm upgrade exits 0")
    dep = deployment(env, ns, "shop-kesm")
    sum2 = dep["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    check(sum2 != sum1, f"checksum/config changed ({sum1[:12]} -> {sum2[:12]}): the pods roll")
    check(configmap_yaml(env, ns, "shop-kesm")["mappings"][0]["scaling"]["maximumPollers"] == 16,
          "the ConfigMap holds the new config")
    check(dep["metadata"]["generation"] == 2, f"the Deployment's generation is 2: {dep['metadata']['generation']}")

    log("helm upgrade without a config change:")
    p = env.helm("upgrade", rel, CHART, "-n", ns, "--reuse-values", "--set", "resources.limits.memory=768Mi")
    dep = deployment(env, ns, "shop-kesm")
    check(p.returncode == 0 and dep["spec"]["template"]["metadata"]["annotations"]["checksum/config"] == sum2,
          "checksum/config unchanged")

    log("helm rollback to revision 1:")
    p = env.helm("rollback", rel, "1", "-n", ns)
    dep = deployment(env, ns, "shop-kesm")
    check(p.returncode == 0 and dep["spec"]["template"]["metadata"]["annotations"]["checksum/config"] == sum1
          and configmap_yaml(env, ns, "shop-kesm")["mappings"][0]["scaling"]["maximumPollers"] == 8,
          "checksum/config and the ConfigMap are revision 1's again")
    p = env.helm("history", rel, "-n", ns, "-o", "json")
    revs = [h["revision"] for h in json.loads(p.stdout)] if p.returncode == 0 else []
    check(revs == [1, 2, 3, 4], f"helm history: revisions {revs}")

    log("helm uninstall:")
    p = env.helm("uninstall", rel, "-n", ns)
    check(p.returncode == 0, "helm uninstall exits 0")
    gone = objects_of(env, ns, manifest)
    check(all(st == 404 for st in gone.values()), f"every object is gone: {gone}")
    st, body = env.req("GET", f"/api/v1/namespaces/{ns}")
    check(st == 200 and body["status"]["phase"] == "Active", "the namespace stays")
    p = env.helm("list", "-n", ns, "-a", "-o", "json")
    check(p.returncode == 0 and json.loads(p.stdout) == [], "no release left")


# ------------------------------------------------------------------------------------- rbac
def cmd_rbac(env):
    ns = env.namespace("chart-rbac")
    other_ns = env.namespace("chart-rbac-other")
    rel = "shop"
    p = env.helm("install", rel, CHART, "-n", ns)
    if not check(p.returncode == 0, f"helm install {rel} in {ns}"):
        return
    # The lease name kesm will use is the one in the ConfigMap it reads.
    lease = configmap_yaml(env, ns, "shop-kesm")["leaderElection"]["leaseName"]
    sa = "shop-kesm"
    st, body = env.req("POST", f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token",
                       {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                        "spec": {"expirationSeconds": 600}})
    if not check(st == 201, f"TokenRequest for ServiceAccount {sa}: HTTP {st}"):
        return
    tok = body["status"]["token"]
    st, body = env.req("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                       {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}, token=tok)
    check(st == 201 and body["status"]["userInfo"]["username"] == f"system:serviceaccount:{ns}:{sa}",
          f"the token is system:serviceaccount:{ns}:{sa}")

    leases = f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases"

    def lease_obj(name, holder, rv=None):
        md = {"name": name}
        if rv:
            md["resourceVersion"] = rv
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": md,
                "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15,
                         "acquireTime": now, "renewTime": now, "leaseTransitions": 0}}

    # Another Lease (made by the admin) that kesm must not touch.
    env.req("POST", leases, lease_obj("someone-else", "x"))
    env.req("POST", f"/apis/coordination.k8s.io/v1/namespaces/{other_ns}/leases", lease_obj(lease, "x"))

    log(f"allowed (Lease {lease} in {ns}):")
    st, body = env.req("POST", leases, lease_obj(lease, "shop-kesm-0"), token=tok)
    check(st == 201, f"create Lease {lease}: HTTP {st} {message(body)[:160]}")
    st, body = env.req("GET", f"{leases}/{lease}", token=tok)
    check(st == 200, f"get Lease {lease}: HTTP {st}")
    rv = body["metadata"]["resourceVersion"] if st == 200 else None
    st, body = env.req("PUT", f"{leases}/{lease}", lease_obj(lease, "shop-kesm-1", rv), token=tok)
    check(st == 200, f"update Lease {lease} (a takeover): HTTP {st} {message(body)[:160]}")

    log("refused (403):")
    st_rv = env.req("GET", f"{leases}/someone-else")[1]["metadata"]["resourceVersion"]
    refused = [
        ("get another Lease", "GET", f"{leases}/someone-else", None, None),
        ("update another Lease", "PUT", f"{leases}/someone-else", lease_obj("someone-else", "me", st_rv), None),
        ("list Leases", "GET", leases, None, None),
        ("watch Leases", "GET", f"{leases}?watch=true&timeoutSeconds=1", None, None),
        ("patch its Lease", "PATCH", f"{leases}/{lease}", {"spec": {"holderIdentity": "me"}},
         "application/merge-patch+json"),
        ("delete its Lease", "DELETE", f"{leases}/{lease}", None, None),
        ("delete the Leases (collection)", "DELETE", leases, None, None),
        ("get its Lease in another namespace", "GET",
         f"/apis/coordination.k8s.io/v1/namespaces/{other_ns}/leases/{lease}", None, None),
        ("create a Lease in another namespace", "POST",
         f"/apis/coordination.k8s.io/v1/namespaces/{other_ns}/leases", lease_obj("new", "me"), None),
        ("get its ConfigMap", "GET", f"/api/v1/namespaces/{ns}/configmaps/shop-kesm", None, None),
        ("list Secrets", "GET", f"/api/v1/namespaces/{ns}/secrets", None, None),
        ("get a Secret", "GET", f"/api/v1/namespaces/{ns}/secrets/kafka-creds", None, None),
        ("list Pods", "GET", f"/api/v1/namespaces/{ns}/pods", None, None),
        ("get its Deployment", "GET", f"/apis/apps/v1/namespaces/{ns}/deployments/shop-kesm", None, None),
        ("get its Role", "GET", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles/shop-kesm", None, None),
        ("list Leases cluster-wide", "GET", "/apis/coordination.k8s.io/v1/leases", None, None),
        ("create a ConfigMap", "POST", f"/api/v1/namespaces/{ns}/configmaps",
         {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}, None),
        ("list Namespaces", "GET", "/api/v1/namespaces", None, None),
    ]
    for what, method, path, body, ctype in refused:
        st, resp = env.req(method, path, body, token=tok, ctype=ctype or "application/json")
        check(st == 403, f"{what}: HTTP {st}")
    st, body = env.req("GET", f"{leases}/{lease}")
    check(st == 200 and body["spec"]["holderIdentity"] == "shop-kesm-1", "its Lease is still there, unchanged")


CHECKS = {"lint": cmd_lint, "render": cmd_render, "app-version": cmd_app_version,
          "validate": cmd_validate, "dry-run": cmd_dry_run, "install": cmd_install, "rbac": cmd_rbac}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env", required=True, help="the API server's env file ($KESM_K8S_DIR/run/env)")
    ap.add_argument("--kesm", help="the kesm binary (app-version, validate)")
    ap.add_argument("check", choices=sorted(CHECKS))
    a = ap.parse_args()
    if a.check in ("app-version", "validate") and not a.kesm:
        ap.error(f"{a.check} needs --kesm")
    env = Env(a.env, a.kesm)
    t0 = time.monotonic()
    try:
        CHECKS[a.check](env)
    finally:
        env.close()
    log(f"chart_test.py {a.check}: {'FAILED ' + str(len(FAILURES)) if FAILURES else 'passed'} "
        f"in {time.monotonic() - t0:.1f} s")
    for f in FAILURES:
        log(f"  failed: {f}")
    if FAILURES:
        return 1
    if SKIPPED:   # ctest: SKIP_RETURN_CODE 77, shown as skipped with the reason above
        log(f"chart_test.py {a.check}: partly skipped: {'; '.join(SKIPPED)}")
        return 77
    return 0


if __name__ == "__main__":
    sys.exit(main())
