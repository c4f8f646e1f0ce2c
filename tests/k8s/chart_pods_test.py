#!/usr/bin/env python3
"""tests/k8s/chart_pods_test.py -- the Helm chart's `mode: pods` (deploy/helm/kesm) proven with
helm and a real Kubernetes API server (tests/k8s/apiserver.sh). One check per call, one ctest
each; the helpers (Env, check, ...) are chart_test.py's:

  chart_pods_test.py --env ENV_FILE [--kesm BIN] CHECK

  lint      helm lint --strict and helm template of both modes (pods: examples/pods-values.yaml
            and with monitors and NetworkPolicy); mode: inProcess spelt out renders byte for
            byte what the defaults render
  render    the objects pods mode renders: controller Deployment, per mapping a StatefulSet and
            a headless Service (names, args, probes, grace periods, resources, replicas), the
            config's pods sections, RBAC exactly limited, PDBs, NetworkPolicy, monitors; the
            values it refuses, each with its message
  dry-run   every pods-mode object passes ?dryRun=All&fieldValidation=Strict
  install   helm install; spec.replicas set by "the controller" (the scale subresource) is kept
            by helm upgrade and by upgrade --dry-run=server (lookup), while helm template shows
            the minimum; a new mapping starts at its minimum; rollback; inProcess -> pods -> inProcess
  rbac      the controller's token can do what its Roles allow, nothing else; the poller's
            ServiceAccount can do nothing
  validate  kesm validate accepts the rendered pods-mode config           (needs --kesm)

ENV_FILE is $KESM_K8S_DIR/run/env. Every check uses fresh namespaces. Exit 0 pass, 1 fail.
"""
import argparse
import copy
import math
import os
import sys
import tempfile
import time

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chart_test as ct  # noqa: E402
from chart_test import CHART, by_kind, check, log, message, one, rendered_config  # noqa: E402

EXAMPLE = os.path.join(CHART, "examples", "pods-values.yaml")
COLLECTIONS = dict(ct.COLLECTIONS)
COLLECTIONS[("apps/v1", "StatefulSet")] = "/apis/apps/v1/namespaces/{ns}/statefulsets"


def example():
    with open(EXAMPLE) as f:
        return yaml.safe_load(f)


def values_file(env, values):
    fd, path = tempfile.mkstemp(suffix=".yaml", dir=env.tmp)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(values, f, sort_keys=False)
    return path


def changed(env, change):
    """A values file: examples/pods-values.yaml changed by change(values)."""
    v = example()
    change(v)
    return values_file(env, v)


def named(docs, kind, name):
    found = [d for d in by_kind(docs, kind) if d["metadata"]["name"] == name]
    return found[0] if len(found) == 1 else None


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def pod_spec(obj):
    return obj["spec"]["template"]["spec"]


def ctr(obj):
    return pod_spec(obj)["containers"][0]


# ------------------------------------------------------------------------------------- lint
def cmd_lint(env):
    netpol = changed(env, lambda v: v.update(
        serviceMonitor={"enabled": True}, podMonitor={"enabled": True},
        networkPolicy={"enabled": True, "ingressFrom": [{"namespaceSelector": {"matchLabels": {
            "kubernetes.io/metadata.name": "monitoring"}}}], "egress": [{"ports": [{"port": 9092}]}]}))
    for label, extra in [("inProcess, default values", []),
                         ("pods, examples/pods-values.yaml", ["-f", EXAMPLE]),
                         ("pods, with monitors and NetworkPolicy", ["-f", netpol]),
                         ("pods, one replica, leader election off",
                          ["-f", EXAMPLE, "--set", "replicaCount=1",
                           "--set", "config.leaderElection.enabled=false"])]:
        p = env.helm("lint", "--strict", CHART, *extra)
        check(p.returncode == 0 and "0 chart(s) failed" in p.stdout, f"helm lint --strict, {label}")
        p, docs = env.template("lint", "kesm-lint", extra=extra)
        check(p.returncode == 0 and len(docs) >= 7, f"helm template, {label}: {len(docs)} objects")
    base, _ = env.template("shop", "kesm-lint")
    spelt, _ = env.template("shop", "kesm-lint", extra=["--set", "mode=inProcess"])
    check(base.returncode == 0 and base.stdout == spelt.stdout,
          "mode: inProcess renders byte for byte what the defaults render")


# ----------------------------------------------------------------------------------- render
def cmd_render(env):
    ns = "kesm-render"
    log("examples/pods-values.yaml:")
    p, docs = env.template("shop", ns, EXAMPLE)
    if not check(p.returncode == 0, "renders"):
        return
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in docs)
    want = sorted(["ConfigMap/shop-kesm", "Deployment/shop-kesm-controller",
                   "PodDisruptionBudget/shop-kesm-controller", "PodDisruptionBudget/kesm-orders",
                   "PodDisruptionBudget/payments-pollers", "Role/shop-kesm",
                   "Role/shop-kesm-controller", "RoleBinding/shop-kesm",
                   "RoleBinding/shop-kesm-controller", "Service/shop-kesm", "Service/kesm-orders",
                   "Service/payments-pollers", "ServiceAccount/shop-kesm",
                   "ServiceAccount/shop-kesm-poller", "StatefulSet/kesm-orders",
                   "StatefulSet/payments-pollers"])
    check(kinds == want, f"objects: {kinds}")

    dep = named(docs, "Deployment", "shop-kesm-controller")
    c = ctr(dep)
    check(dep["spec"]["replicas"] == 2, "controller: 2 replicas")
    check(c["args"] == ["controller", "--config", "/etc/kesm/kesm.yaml"], f"controller args {c['args']}")
    check(c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
          and c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
          and c["startupProbe"]["httpGet"]["path"] == "/healthz", "controller probes /healthz /readyz")
    check(c["ports"] == [{"name": "http", "containerPort": 9464, "protocol": "TCP"}], "controller port http 9464")
    check(c["resources"] == {"requests": {"cpu": "50m", "memory": "64Mi"},
                             "limits": {"cpu": "500m", "memory": "256Mi"}}, "controller: controller.resources")
    check(pod_spec(dep)["serviceAccountName"] == "shop-kesm"
          and pod_spec(dep)["automountServiceAccountToken"] is True, "controller: the chart's SA, token mounted")
    check(pod_spec(dep)["terminationGracePeriodSeconds"] == 30, "controller: grace period 30 s (it calls no function)")
    sc = c["securityContext"]
    check(sc.get("readOnlyRootFilesystem") is True and sc.get("runAsNonRoot") is True
          and sc.get("capabilities") == {"drop": ["ALL"]}, "controller: the chart's securityContext")
    ctl_labels = dep["spec"]["template"]["metadata"]["labels"]
    check(ctl_labels.get("app.kubernetes.io/component") == "controller"
          and matches(dep["spec"]["selector"]["matchLabels"], ctl_labels), "controller pods: component controller")
    cfg = rendered_config(docs)
    check(cfg["leaderElection"] == {"leaseName": "shop-kesm"}, "leaderElection.leaseName as in inProcess mode")
    check([m.get("pods") for m in cfg["mappings"]] == [
        {"pollersPerPod": 2, "statusInterval": "10s", "statefulSet": "kesm-orders", "service": "kesm-orders"},
        {"statefulSet": "payments-pollers", "service": "payments-pollers"}],
        f"the config's pods sections name the rendered StatefulSets and Services: "
        f"{[m.get('pods') for m in cfg['mappings']]}")

    for m, sts_name, svc_name, ppp, replicas, tgps, res in [
            ("orders", "kesm-orders", "kesm-orders", 2, math.ceil(3 / 2), 45 + 10 + 20,
             {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}}),
            ("payments", "payments-pollers", "payments-pollers", 1, 1, 30 + 30 + 20,
             {"requests": {"cpu": "200m", "memory": "128Mi"}, "limits": {"cpu": "2", "memory": "512Mi"}})]:
        log(f"mapping {m}:")
        sts = named(docs, "StatefulSet", sts_name)
        svc = named(docs, "Service", svc_name)
        if not check(sts is not None and svc is not None, f"StatefulSet {sts_name}, Service {svc_name}"):
            continue
        c = ctr(sts)
        pod = pod_spec(sts)
        labels = sts["spec"]["template"]["metadata"]["labels"]
        check(sts["spec"]["podManagementPolicy"] == "Parallel", "podManagementPolicy Parallel")
        check(sts["spec"]["serviceName"] == svc_name, f"serviceName {svc_name}")
        check(sts["spec"]["replicas"] == replicas,
              f"replicas {replicas} = ceil(minimumPollers / pollersPerPod) (no live object: helm template)")
        check(c["args"] == ["poller", "--config", "/etc/kesm/kesm.yaml", "--mapping", m, "--pollers", str(ppp)],
              f"args {c['args']}")
        check({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in c["env"],
              "POD_NAME from the downward API")
        check(c["ports"] == [{"name": "http", "containerPort": 9464, "protocol": "TCP"}], "containerPort http 9464")
        check(c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
              and c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}, "probes /healthz /readyz")
        check(pod["terminationGracePeriodSeconds"] == tgps,
              f"terminationGracePeriodSeconds gracePeriod + function.timeout + 20 = {tgps}: "
              f"{pod['terminationGracePeriodSeconds']}")
        check(c["resources"] == res, f"resources {c['resources']}")
        check(pod["serviceAccountName"] == "shop-kesm-poller" and pod["automountServiceAccountToken"] is False,
              "the poller SA, no token mounted")
        check(c["securityContext"]["readOnlyRootFilesystem"] is True
              and {"/etc/kesm", "/tmp"} <= {v["mountPath"] for v in c["volumeMounts"]},
              "read-only root, the config and /tmp mounted")
        check(matches(sts["spec"]["selector"]["matchLabels"], labels)
              and labels["app.kubernetes.io/component"] == "poller"
              and not matches(dep["spec"]["selector"]["matchLabels"], labels)
              and not matches(sts["spec"]["selector"]["matchLabels"], ctl_labels),
              "selectors: its pods only; the controller's selector does not take them, nor the reverse")
        check(svc["spec"]["clusterIP"] == "None" and svc["spec"]["publishNotReadyAddresses"] is True
              and svc["spec"]["ports"] == [{"name": "http", "port": 9464, "targetPort": "http", "protocol": "TCP"}]
              and svc["spec"]["selector"] == sts["spec"]["selector"]["matchLabels"],
              "headless Service: clusterIP None, not-ready addresses published, port http, the StatefulSet's pods")
        pdb = named(docs, "PodDisruptionBudget", sts_name)
        check(pdb["spec"]["maxUnavailable"] == 1 and pdb["spec"]["selector"]["matchLabels"] == sts["spec"]["selector"]["matchLabels"],
              "PDB maxUnavailable 1 over its pods")
    main_svc = named(docs, "Service", "shop-kesm")
    check(main_svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"],
          "the chart's Service selects the controller's pods only")

    log("RBAC:")
    ctl_role = named(docs, "Role", "shop-kesm-controller")
    check(ctl_role["rules"] == [
        {"apiGroups": ["apps"], "resources": ["statefulsets/scale"],
         "resourceNames": ["kesm-orders", "payments-pollers"], "verbs": ["get", "update"]},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list"]}],
        f"controller Role: get/update the scale of exactly the two StatefulSets, list EndpointSlices: {ctl_role['rules']}")
    check(named(docs, "Role", "shop-kesm")["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["shop-kesm"],
         "verbs": ["get", "update"]}], "the Lease Role as in inProcess mode")
    subjects = [s for rb in by_kind(docs, "RoleBinding") for s in rb["subjects"]]
    check(subjects == [{"kind": "ServiceAccount", "name": "shop-kesm", "namespace": ns}] * 2,
          "both RoleBindings bind the controller's SA, none the poller's")
    check(named(docs, "ServiceAccount", "shop-kesm-poller")["automountServiceAccountToken"] is False,
          "poller SA: automountServiceAccountToken false")

    log("one config change rolls only its mapping's pods:")
    sums = {s["metadata"]["name"]: s["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
            for s in by_kind(docs, "StatefulSet")}
    ctl_sum = dep["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    _, docs2 = env.template("shop", ns, changed(env, lambda v: v["config"]["mappings"][1]["function"].update(timeout="20s")))
    sums2 = {s["metadata"]["name"]: s["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
             for s in by_kind(docs2, "StatefulSet")}
    check(sums2["kesm-orders"] == sums["kesm-orders"] and sums2["payments-pollers"] != sums["payments-pollers"]
          and named(docs2, "Deployment", "shop-kesm-controller")["spec"]["template"]["metadata"]["annotations"]["checksum/config"] != ctl_sum,
          "payments' timeout: payments' pods and the controller roll, orders' pods do not")
    check(pod_spec(named(docs2, "StatefulSet", "payments-pollers"))["terminationGracePeriodSeconds"] == 70,
          "and payments' grace period follows: 30 + 20 + 20 = 70")

    log("monitors and NetworkPolicy:")
    _, docs = env.template("shop", ns, changed(env, lambda v: v.update(
        serviceMonitor={"enabled": True}, podMonitor={"enabled": True},
        networkPolicy={"enabled": True, "ingressFrom": [{"namespaceSelector": {"matchLabels": {
            "kubernetes.io/metadata.name": "monitoring"}}}], "egress": [{"ports": [{"port": 9092}]}]})))
    sm, pm = one(docs, "ServiceMonitor"), one(docs, "PodMonitor")
    svcs = by_kind(docs, "Service")
    check(len(svcs) == 3 and all(matches(sm["spec"]["selector"]["matchLabels"], s["metadata"]["labels"]) for s in svcs)
          and sm["spec"]["endpoints"][0]["port"] == "http",
          "ServiceMonitor selects the controller's Service and both headless Services, port http")
    pods_labels = [w["spec"]["template"]["metadata"]["labels"] for w in by_kind(docs, "Deployment") + by_kind(docs, "StatefulSet")]
    check(len(pods_labels) == 3 and all(matches(pm["spec"]["selector"]["matchLabels"], l) for l in pods_labels)
          and pm["spec"]["podMetricsEndpoints"][0]["port"] == "http",
          "PodMonitor selects the controller's and every poller pod, port http")
    nps = {n["metadata"]["name"]: n for n in by_kind(docs, "NetworkPolicy")}
    ctl_np, poll_np = nps.get("shop-kesm"), nps.get("shop-kesm-pollers")
    check(ctl_np is not None and matches(ctl_np["spec"]["podSelector"]["matchLabels"], pods_labels[0])
          and not any(matches(ctl_np["spec"]["podSelector"]["matchLabels"], l) for l in pods_labels[1:]),
          "NetworkPolicy shop-kesm: the controller's pods")
    eg = ctl_np["spec"].get("egress", []) if ctl_np else []
    check(len(eg) == 3 and eg[0] == {"ports": [{"port": 9092}]}
          and eg[1] == {"to": [{"podSelector": {"matchLabels": poll_np["spec"]["podSelector"]["matchLabels"]}}],
                        "ports": [{"port": 9464, "protocol": "TCP"}]}
          and eg[2]["ports"][0]["port"] == 53,
          "controller's egress: the rules, the poller pods' port 9464 (their /status), DNS")
    ing = poll_np["spec"]["ingress"][0] if poll_np else {}
    check(poll_np is not None and all(matches(poll_np["spec"]["podSelector"]["matchLabels"], l) for l in pods_labels[1:])
          and not matches(poll_np["spec"]["podSelector"]["matchLabels"], pods_labels[0])
          and ing["ports"] == [{"port": "http", "protocol": "TCP"}]
          and {"podSelector": {"matchLabels": dep["spec"]["selector"]["matchLabels"]}} in ing["from"]
          and ing["from"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "monitoring"},
          "NetworkPolicy shop-kesm-pollers: every poller pod; port http from ingressFrom and from the controller's pods")
    check(poll_np is not None and poll_np["spec"]["egress"][0] == {"ports": [{"port": 9092}]}
          and poll_np["spec"]["egress"][-1]["ports"][0]["port"] == 53, "pollers' egress: the rules + DNS")

    log("one replica, leader election off: no Lease Role, no controller PDB, the scale Role stays:")
    _, docs = env.template("shop", ns, EXAMPLE, extra=["--set", "replicaCount=1", "--set", "config.leaderElection.enabled=false"])
    check([r["metadata"]["name"] for r in by_kind(docs, "Role")] == ["shop-kesm-controller"]
          and sorted(p["metadata"]["name"] for p in by_kind(docs, "PodDisruptionBudget")) == ["kesm-orders", "payments-pollers"],
          "Roles: shop-kesm-controller only; PDBs: the two StatefulSets'")
    _, docs = env.template("shop", ns, EXAMPLE, extra=["--set", "pods.serviceAccount.create=false", "--set", "terminationGracePeriodSeconds=100"])
    check(not named(docs, "ServiceAccount", "shop-kesm-poller")
          and all(pod_spec(s)["serviceAccountName"] == "default" and pod_spec(s)["automountServiceAccountToken"] is False
                  for s in by_kind(docs, "StatefulSet")),
          "pods.serviceAccount.create false: the namespace's default SA, still no token")
    check(all(pod_spec(w)["terminationGracePeriodSeconds"] == 100 for w in by_kind(docs, "StatefulSet") + by_kind(docs, "Deployment")),
          "terminationGracePeriodSeconds set: every pod gets it")

    log("values pods mode refuses (helm template fails, saying why):")
    def mapping0(**kw):
        return lambda v: v["config"]["mappings"][0].update(**kw)
    refused = [
        ("mode: pod (not inProcess or pods)", ["--set", "mode=pod"], "at '/mode': value must be one of 'inProcess', 'pods'"),
        ("a misspelt pods value (pods.resourcess)", ["-f", EXAMPLE, "--set", "pods.resourcess.x=1"], "resourcess"),
        ("a per-mapping override of a mapping that does not exist (pods.mappings.ordrs)",
         ["-f", EXAMPLE, "--set", "pods.mappings.ordrs.resources.requests.cpu=1"],
         "pods.mappings.ordrs: no mapping named ordrs in config.mappings (orders, payments)"),
        ("a misspelt key of an override (pods.mappings.orders.resource)",
         ["-f", EXAMPLE, "--set", "pods.mappings.orders.resource.requests.cpu=1"], "resource"),
        ("a misspelt controller value (controller.resource)", ["-f", EXAMPLE, "--set", "controller.resource.x=1"], "resource"),
        ("a mapping name that is no DNS label (Orders_EU), no statefulSet given",
         ["-f", changed(env, mapping0(name="Orders_EU"))],
         'config.mappings[0].name "Orders_EU": the default StatefulSet name "kesm-Orders_EU" is not a DNS-1123 label'),
        ("a 60-character mapping name (kesm-<name> over 52)",
         ["-f", changed(env, mapping0(name="o" * 60))], "set config.mappings[0].pods.statefulSet"),
        ("pods.statefulSet not a DNS label (schema)",
         ["-f", changed(env, lambda v: v["config"]["mappings"][0]["pods"].update(statefulSet="Orders"))], "statefulSet"),
        ("pods.pollersPerPod 65 (schema: 1-64)",
         ["-f", changed(env, lambda v: v["config"]["mappings"][0]["pods"].update(pollersPerPod=65))],
         "at '/config/mappings/0/pods/pollersPerPod': maximum: got 65, want 64"),
        ("a misspelt key of a mapping's pods (pollersPerPods)",
         ["-f", changed(env, lambda v: v["config"]["mappings"][0]["pods"].update(pollersPerPods=2))], "pollersPerPods"),
        ("two mappings on one StatefulSet",
         ["-f", changed(env, lambda v: v["config"]["mappings"][1]["pods"].update(statefulSet="kesm-orders", service="other"))],
         "StatefulSet kesm-orders is already the StatefulSet of config.mappings[0]"),
        ("two mappings on one Service",
         ["-f", changed(env, lambda v: v["config"]["mappings"][1]["pods"].update(service="kesm-orders"))],
         "Service kesm-orders is already the Service of config.mappings[0]"),
        ("a poller Service named as the chart's Service (release kesm-orders)",
         ["-f", EXAMPLE], "would have the name of the chart's Service"),
        ("a grace period that is not a duration",
         ["-f", changed(env, lambda v: v["config"]["mappings"][0]["scaling"].update(gracePeriod="45"))],
         "config.mappings[0].scaling.gracePeriod"),
        ("2 controller replicas with leader election off",
         ["-f", EXAMPLE, "--set", "config.leaderElection.enabled=false"], "leaderElection.enabled false"),
    ]
    for what, extra, needle in refused:
        release = "kesm-orders" if "release kesm-orders" in what else "shop"
        p, _ = env.template(release, ns, extra=extra, expect_ok=False)
        lines = p.stderr.splitlines()
        msg = next((l for l in lines if " at '" in l), next((l for l in lines if "Error" in l), p.stderr.strip()))
        check(p.returncode != 0 and needle in p.stderr, f"{what}: {msg[:240]}")


# ---------------------------------------------------------------------------------- dry-run
def dry_create(env, ns, obj):
    key = (obj["apiVersion"], obj["kind"])
    if key not in COLLECTIONS:
        return 0, f"no collection known for {key}"
    return env.req("POST", COLLECTIONS[key].format(ns=ns) + ct.DRY, obj)


def cmd_dry_run(env):
    ct.ensure_crds(env)
    full = changed(env, lambda v: v.update(
        serviceMonitor={"enabled": True}, podMonitor={"enabled": True}, prometheusRule={"enabled": True},
        networkPolicy={"enabled": True, "ingressFrom": [{"namespaceSelector": {}}], "egress": [{"ports": [{"port": 9092}]}]},
        topologySpreadConstraints=[{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                    "whenUnsatisfiable": "ScheduleAnyway"}],
        kafkaSecrets=[{"name": "kafka-creds", "mountPath": "/var/run/secrets/kafka"}]))
    for label, f in [("examples/pods-values.yaml", EXAMPLE), ("with monitors, rules, NetworkPolicy, spread, a Secret", full)]:
        ns = env.namespace("chart-pods-dry")
        p, docs = env.template("shop", ns, f)
        log(f"{label} (namespace {ns}):")
        if not check(p.returncode == 0, "renders"):
            continue
        for d in docs:
            st, body = dry_create(env, ns, d)
            check(200 <= st < 300, f"{d['kind']} {d['metadata']['name']}: HTTP {st} {message(body)[:300]}")
    log("a broken StatefulSet is refused (the check can fail):")
    ns = env.namespace("chart-pods-dry-broken")
    _, docs = env.template("shop", ns, EXAMPLE)
    sts = copy.deepcopy(by_kind(docs, "StatefulSet")[0])
    sts["spec"]["podManagementPolicy"] = "Paralel"
    st, body = dry_create(env, ns, sts)
    check(not 200 <= st < 300, f"podManagementPolicy Paralel: refused, HTTP {st} {message(body)[:200]}")
    sts = copy.deepcopy(by_kind(docs, "StatefulSet")[0])
    sts["spec"]["template"]["metadata"]["labels"]["kesm/statefulset"] = "other"
    st, body = dry_create(env, ns, sts)
    check(not 200 <= st < 300, f"selector not matching the pod labels: refused, HTTP {st} {message(body)[:200]}")


# ---------------------------------------------------------------------------------- install
def sts_replicas(env, ns, name):
    st, body = env.req("GET", f"/apis/apps/v1/namespaces/{ns}/statefulsets/{name}")
    return body["spec"].get("replicas") if st == 200 else None


def scale_to(env, ns, name, n):
    """What kesm controller does: GET the Scale, PUT it back with spec.replicas = n."""
    path = f"/apis/apps/v1/namespaces/{ns}/statefulsets/{name}/scale"
    st, scale = env.req("GET", path)
    if st != 200:
        return st
    scale["spec"]["replicas"] = n
    st, _ = env.req("PUT", path, scale)
    return st


def manifest_replicas(text, name):
    for d in yaml.safe_load_all(text):
        if d and d.get("kind") == "StatefulSet" and d["metadata"]["name"] == name:
            return d["spec"]["replicas"]
    return None


def cmd_install(env):
    ns = env.namespace("chart-pods-install")
    rel = "shop"
    log(f"helm install {rel} -f examples/pods-values.yaml (namespace {ns}):")
    p = env.helm("install", rel, CHART, "-n", ns, "-f", EXAMPLE)
    if not check(p.returncode == 0, "helm install exits 0"):
        return
    check("pods mode" in p.stdout and "get statefulset kesm-orders" in p.stdout, "NOTES describe pods mode")
    manifest = [d for d in yaml.safe_load_all(env.helm("get", "manifest", rel, "-n", ns).stdout) if d]
    present = objects_of(env, ns, manifest)
    check(len(present) == 16 and all(st == 200 for st in present.values()), f"every object exists: {len(present)}")
    check(sts_replicas(env, ns, "kesm-orders") == 2 and sts_replicas(env, ns, "payments-pollers") == 1,
          "first install: replicas at the minimum (orders 2 = ceil(3/2), payments 1)")

    log("the controller scales orders to 7 (PUT .../scale, as kesm controller does):")
    check(scale_to(env, ns, "kesm-orders", 7) == 200 and sts_replicas(env, ns, "kesm-orders") == 7, "spec.replicas 7")
    p, docs = env.template(rel, ns, EXAMPLE)
    check(manifest_replicas(p.stdout, "kesm-orders") == 2, "helm template (no cluster) renders the minimum, 2")
    p = env.helm("upgrade", rel, CHART, "-n", ns, "-f", EXAMPLE, "--dry-run=server")
    check(p.returncode == 0 and manifest_replicas(p.stdout.split("NOTES:")[0].split("MANIFEST:")[-1], "kesm-orders") == 7,
          "helm upgrade --dry-run=server renders the live count, 7 (lookup)")

    log("helm upgrade with a changed config and a new mapping:")
    more = changed(env, lambda v: (v["config"]["mappings"][0]["scaling"].update(maximumPollers=30),
                                   v["config"]["mappings"].append({
                                       "name": "refunds", "source": {"bootstrapServers": "k:9092", "topics": ["refunds"]},
                                       "function": {"url": "http://refunds-fn:8080/"},
                                       "scaling": {"minimumPollers": 4}, "pods": {"pollersPerPod": 3}})))
    before = ct.deployment(env, ns, "shop-kesm-controller")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    t0 = time.monotonic()
    p = env.helm("upgrade", rel, CHART, "-n", ns, "-f", more)
    log(f"  (helm upgrade took {time.monotonic() - t0:.1f} s)")
    check(p.returncode == 0, "helm upgrade exits 0")
    check(sts_replicas(env, ns, "kesm-orders") == 7, f"orders keeps the controller's 7: {sts_replicas(env, ns, 'kesm-orders')}")
    check(sts_replicas(env, ns, "payments-pollers") == 1, "payments keeps 1")
    check(sts_replicas(env, ns, "kesm-refunds") == 2, "the new mapping refunds starts at ceil(4/3) = 2")
    after = ct.deployment(env, ns, "shop-kesm-controller")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    cfg = ct.configmap_yaml(env, ns, "shop-kesm")
    check(after != before and cfg["mappings"][2]["pods"]["statefulSet"] == "kesm-refunds",
          "the controller rolls; the ConfigMap names kesm-refunds")
    st, role = env.req("GET", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles/shop-kesm-controller")
    check(st == 200 and role["rules"][0]["resourceNames"] == ["kesm-orders", "payments-pollers", "kesm-refunds"],
          "the controller's Role names the new StatefulSet too")

    log("helm rollback to revision 1 (Helm re-applies revision 1's stored manifest):")
    scale_to(env, ns, "kesm-orders", 9)
    p = env.helm("rollback", rel, "1", "-n", ns)
    check(p.returncode == 0, "helm rollback exits 0")
    check(sts_replicas(env, ns, "kesm-refunds") is None, "refunds' StatefulSet is gone")
    got = sts_replicas(env, ns, "kesm-orders")
    check(got == 2, f"orders is back to revision 1's rendered 2 (not re-rendered, no lookup): {got}; "
          "the controller writes its count back at its next evaluation (docs)")

    log("switching modes: inProcess -> pods -> inProcess (the Deployments have their own names):")
    ns2 = env.namespace("chart-pods-switch")
    p = env.helm("install", rel, CHART, "-n", ns2)
    check(p.returncode == 0 and ct.deployment(env, ns2, "shop-kesm") is not None, "inProcess install: Deployment shop-kesm")
    p = env.helm("upgrade", rel, CHART, "-n", ns2, "-f", EXAMPLE)
    check(p.returncode == 0 and ct.deployment(env, ns2, "shop-kesm") is None
          and ct.deployment(env, ns2, "shop-kesm-controller") is not None and sts_replicas(env, ns2, "kesm-orders") == 2,
          "upgrade to pods: shop-kesm replaced by shop-kesm-controller and the StatefulSets")
    p = env.helm("upgrade", rel, CHART, "-n", ns2, "--reset-values")
    check(p.returncode == 0 and ct.deployment(env, ns2, "shop-kesm") is not None
          and sts_replicas(env, ns2, "kesm-orders") is None, "back to inProcess: the StatefulSets are gone")
    p = env.helm("uninstall", rel, "-n", ns)
    check(p.returncode == 0 and all(st == 404 for st in objects_of(env, ns, manifest).values()),
          "helm uninstall removes every object")


def objects_of(env, ns, manifest_docs):
    out = {}
    for d in manifest_docs:
        coll = COLLECTIONS[(d["apiVersion"], d["kind"])].format(ns=ns)
        st, _ = env.req("GET", f"{coll}/{d['metadata']['name']}")
        out[(d["kind"], d["metadata"]["name"])] = st
    return out


# ------------------------------------------------------------------------------------- rbac
def token(env, ns, sa):
    st, body = env.req("POST", f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token",
                       {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                        "spec": {"expirationSeconds": 600}})
    return body["status"]["token"] if st == 201 else None


def cmd_rbac(env):
    ns = env.namespace("chart-pods-rbac")
    other_ns = env.namespace("chart-pods-rbac-other")
    p = env.helm("install", "shop", CHART, "-n", ns, "-f", EXAMPLE)
    if not check(p.returncode == 0, f"helm install in {ns}"):
        return
    # What the admin makes besides: a StatefulSet kesm must not size, EndpointSlices to list.
    other = copy.deepcopy(next(d for d in yaml.safe_load_all(env.helm("get", "manifest", "shop", "-n", ns).stdout)
                               if d and d["kind"] == "StatefulSet"))
    other["metadata"] = {"name": "someone-else"}
    st, _ = env.req("POST", f"/apis/apps/v1/namespaces/{ns}/statefulsets", other)
    check(st == 201, f"admin creates StatefulSet someone-else: {st}")
    slice_obj = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                 "metadata": {"name": "kesm-orders-abc", "labels": {"kubernetes.io/service-name": "kesm-orders"}},
                 "addressType": "IPv4", "ports": [{"name": "http", "port": 9464, "protocol": "TCP"}],
                 "endpoints": [{"addresses": ["10.0.0.7"], "conditions": {"ready": False}}]}
    for n in (ns, other_ns):
        st, _ = env.req("POST", f"/apis/discovery.k8s.io/v1/namespaces/{n}/endpointslices", slice_obj)
        check(st == 201, f"admin creates an EndpointSlice of kesm-orders in {n}: {st}")
    ctl, poller = token(env, ns, "shop-kesm"), token(env, ns, "shop-kesm-poller")
    if not check(ctl and poller, "TokenRequest for shop-kesm and shop-kesm-poller"):
        return
    apps = f"/apis/apps/v1/namespaces/{ns}/statefulsets"
    eps = f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices"
    leases = f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases"

    log("the controller's token, allowed:")
    for name in ("kesm-orders", "payments-pollers"):
        st, scale = env.req("GET", f"{apps}/{name}/scale", token=ctl)
        check(st == 200, f"get the scale of {name}: {st}")
        if st == 200:
            scale["spec"]["replicas"] = 4
            st, _ = env.req("PUT", f"{apps}/{name}/scale", scale, token=ctl)
            check(st == 200 and sts_replicas(env, ns, name) == 4, f"update the scale of {name} to 4: {st}")
    st, body = env.req("GET", f"{eps}?labelSelector=kubernetes.io%2Fservice-name%3Dkesm-orders", token=ctl)
    check(st == 200 and [i["metadata"]["name"] for i in body["items"]] == ["kesm-orders-abc"],
          f"list the EndpointSlices of kesm-orders (the controller's request): {st}")
    st, _ = env.req("POST", leases, {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                     "metadata": {"name": "shop-kesm"}, "spec": {"holderIdentity": "x"}}, token=ctl)
    check(st == 201, f"create its Lease shop-kesm: {st}")

    log("the controller's token, refused (403):")
    st_rv = env.req("GET", f"{apps}/someone-else/scale")[1]
    refused = [
        ("get the scale of another StatefulSet", "GET", f"{apps}/someone-else/scale", None, None),
        ("update the scale of another StatefulSet", "PUT", f"{apps}/someone-else/scale", st_rv, None),
        ("patch the scale of its StatefulSet", "PATCH", f"{apps}/kesm-orders/scale", {"spec": {"replicas": 5}},
         "application/merge-patch+json"),
        ("get its StatefulSet", "GET", f"{apps}/kesm-orders", None, None),
        ("list StatefulSets", "GET", apps, None, None),
        ("update its StatefulSet", "PUT", f"{apps}/kesm-orders", other, None),
        ("get an EndpointSlice by name", "GET", f"{eps}/kesm-orders-abc", None, None),
        ("watch EndpointSlices", "GET", f"{eps}?watch=true&timeoutSeconds=1", None, None),
        ("list EndpointSlices in another namespace", "GET",
         f"/apis/discovery.k8s.io/v1/namespaces/{other_ns}/endpointslices", None, None),
        ("list EndpointSlices cluster-wide", "GET", "/apis/discovery.k8s.io/v1/endpointslices", None, None),
        ("create an EndpointSlice", "POST", eps, slice_obj, None),
        ("list Pods", "GET", f"/api/v1/namespaces/{ns}/pods", None, None),
        ("list Endpoints (the old API)", "GET", f"/api/v1/namespaces/{ns}/endpoints", None, None),
        ("list Secrets", "GET", f"/api/v1/namespaces/{ns}/secrets", None, None),
        ("get another Lease", "GET", f"{leases}/other", None, None),
    ]
    for what, method, path, body, ctype in refused:
        st, _ = env.req(method, path, body, token=ctl, ctype=ctype or "application/json")
        check(st == 403, f"{what}: HTTP {st}")
    check(sts_replicas(env, ns, "someone-else") == other["spec"]["replicas"],
          f"someone-else's replicas unchanged ({other['spec']['replicas']})")

    log("the poller's token: nothing (403):")
    for what, method, path in [
            ("get the scale of its StatefulSet", "GET", f"{apps}/kesm-orders/scale"),
            ("list EndpointSlices", "GET", eps),
            ("get the Lease", "GET", f"{leases}/shop-kesm"),
            ("list Pods", "GET", f"/api/v1/namespaces/{ns}/pods"),
            ("get the ConfigMap", "GET", f"/api/v1/namespaces/{ns}/configmaps/shop-kesm")]:
        st, _ = env.req(method, path, token=poller)
        check(st == 403, f"{what}: HTTP {st}")


# --------------------------------------------------------------------------------- validate
def cmd_validate(env):
    _, docs = env.template("shop", "kesm-validate", EXAMPLE)
    cfg = rendered_config(docs)
    p = ct.kesm_validate(env, cfg, {})
    check(p.returncode == 0 and "valid" in p.stdout,
          f"kesm validate accepts the pods-mode config: exit {p.returncode} {(p.stdout + p.stderr).strip()[:400]}")
    bad = copy.deepcopy(cfg)
    bad["mappings"][0]["pods"]["pollersPerPod"] = 0
    p = ct.kesm_validate(env, bad, {})
    check(p.returncode == 2 and "pollersPerPod" in p.stderr,
          f"and refuses pollersPerPod 0 (the check can fail): exit {p.returncode} {p.stderr.strip()[:200]}")


CHECKS = {"lint": cmd_lint, "render": cmd_render, "dry-run": cmd_dry_run, "install": cmd_install,
          "rbac": cmd_rbac, "validate": cmd_validate}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env", required=True, help="the API server's env file ($KESM_K8S_DIR/run/env)")
    ap.add_argument("--kesm", help="the kesm binary (validate)")
    ap.add_argument("check", choices=sorted(CHECKS))
    a = ap.parse_args()
    if a.check == "validate" and not a.kesm:
        ap.error("validate needs --kesm")
    env = ct.Env(a.env, a.kesm)
    t0 = time.monotonic()
    try:
        CHECKS[a.check](env)
    finally:
        env.close()
    log(f"chart_pods_test.py {a.check}: {'FAILED ' + str(len(ct.FAILURES)) if ct.FAILURES else 'passed'} "
        f"in {time.monotonic() - t0:.1f} s")
    for f in ct.FAILURES:
        log(f"  failed: {f}")
    if ct.FAILURES:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
