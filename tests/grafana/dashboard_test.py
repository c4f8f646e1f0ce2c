#!/usr/bin/env python3
"""Tests of the Grafana dashboard deploy/grafana/kesm.json (ctest "grafana: ...").

    dashboard_test.py CHECK

CHECK is one of:
  valid          the validator (tests/grafana/validate.sh) accepts the dashboard
  unknown-field  it rejects a copy with an unknown field, for each level of the dashboard
                 (top level, row, panel, options, fieldConfig, custom, gridPos, target,
                 variable, Grafana's __inputs of "export for sharing externally")
  wrong-type     it rejects a copy with a value of the wrong type, for each level
  checks         it rejects copies breaking the dashboard's own rules: a hard-coded uid, a
                 misspelt metric, a missing $mapping matcher, overlapping panels, ...
  promql         every target expr, with the Grafana variables replaced as the e2e test
                 replaces them, parses as PromQL (promtool check rules on a temporary file)

Each copy is made in a temporary directory; the original is never changed. A rejection must
name what was broken (a substring of the validator's message), so a copy rejected for another
reason does not count. Exit 0 when every case behaves, 1 otherwise.
"""
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DASHBOARD = os.path.join(REPO, "deploy", "grafana", "kesm.json")
DOCS = os.path.join(REPO, "docs", "operations.md")
RULES = os.path.join(REPO, "deploy", "prometheus", "rules.yaml")
VALIDATE = os.path.join(HERE, "validate.sh")

# What the e2e test substitutes for the Grafana variables in exprs.
SUBSTITUTIONS = {
    "$mapping": ".*",
    "$instance": ".*",
    "$__rate_interval": "1m",
    "$__range": "1h",
}


def run_validator(path):
    proc = subprocess.run(
        [VALIDATE, "run", "-docs", DOCS, "-rules", RULES, path],
        capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout + proc.stderr


def load():
    with open(DASHBOARD, encoding="utf-8") as f:
        return json.load(f)


def panels(doc, kind=None):
    for p in doc["panels"]:
        if kind is None or p["type"] == kind:
            yield p


def first(doc, kind):
    return next(panels(doc, kind))


def target(doc, kind="timeseries"):
    return first(doc, kind)["targets"][0]


def variable(doc, name):
    return next(v for v in doc["templating"]["list"] if v["name"] == name)


def setter(path_fn, key, value):
    def mutate(doc):
        path_fn(doc)[key] = value
    return mutate


# (name, mutation, substring the validator must print)
UNKNOWN_FIELD = [
    ("dashboard top level", setter(lambda d: d, "bogusTop", 1), "unexpected field 'bogusTop'"),
    ("__inputs of an external export", setter(lambda d: d, "__inputs", []),
     "unexpected field '__inputs'"),
    ("row", setter(lambda d: first(d, "row"), "bogusRow", True), "unexpected field 'bogusRow'"),
    ("panel", setter(lambda d: first(d, "timeseries"), "bogusPanel", True),
     "unexpected field 'bogusPanel'"),
    ("timeseries options.legend",
     setter(lambda d: first(d, "timeseries")["options"]["legend"], "bogusLegend", True),
     "unexpected field 'bogusLegend'"),
    ("table options", setter(lambda d: first(d, "table")["options"], "bogusTable", 1),
     "unexpected field 'bogusTable'"),
    ("stat options.reduceOptions",
     setter(lambda d: first(d, "stat")["options"]["reduceOptions"], "bogusReduce", 1),
     "unexpected field 'bogusReduce'"),
    ("state-timeline options",
     setter(lambda d: first(d, "state-timeline")["options"], "bogusTimeline", 1),
     "unexpected field 'bogusTimeline'"),
    ("fieldConfig.defaults",
     setter(lambda d: first(d, "timeseries")["fieldConfig"]["defaults"], "bogusDefault", 1),
     "unexpected field 'bogusDefault'"),
    ("fieldConfig.defaults.custom",
     setter(lambda d: first(d, "timeseries")["fieldConfig"]["defaults"]["custom"], "bogusCustom",
            1),
     "unexpected field 'bogusCustom'"),
    ("gridPos", setter(lambda d: first(d, "timeseries")["gridPos"], "bogusGrid", 1),
     "unexpected field 'bogusGrid'"),
    ("target", setter(lambda d: target(d), "bogusTarget", 1), "unexpected field 'bogusTarget'"),
    ("template variable", setter(lambda d: variable(d, "mapping"), "bogusVariable", 1),
     "unexpected field 'bogusVariable'"),
]

WRONG_TYPE = [
    ("schemaVersion as a string", setter(lambda d: d, "schemaVersion", "42"),
     "schemaVersion: json: cannot unmarshal string"),
    ("panel id as a string", setter(lambda d: first(d, "timeseries"), "id", "2"),
     ".id: json: cannot unmarshal string"),
    ("panel title as a number", setter(lambda d: first(d, "timeseries"), "title", 7),
     ".title: json: cannot unmarshal number"),
    ("gridPos.h as a string", setter(lambda d: first(d, "timeseries")["gridPos"], "h", "8"),
     ".gridPos.h: json: cannot unmarshal string"),
    ("legend.showLegend as a string",
     setter(lambda d: first(d, "timeseries")["options"]["legend"], "showLegend", "yes"),
     "options.legend.showLegend: json: cannot unmarshal string"),
    ("table showHeader as a string",
     setter(lambda d: first(d, "table")["options"], "showHeader", "yes"),
     "options.showHeader: json: cannot unmarshal string"),
    ("fieldConfig.defaults.unit as a number",
     setter(lambda d: first(d, "timeseries")["fieldConfig"]["defaults"], "unit", 5),
     "defaults.unit: json: cannot unmarshal number"),
    ("custom.lineWidth as a string",
     setter(lambda d: first(d, "timeseries")["fieldConfig"]["defaults"]["custom"], "lineWidth",
            "1"),
     "custom.lineWidth: json: cannot unmarshal string"),
    ("target instant as a string", setter(lambda d: target(d), "instant", "true"),
     "instant: json: cannot unmarshal string"),
    ("target expr as a number", setter(lambda d: target(d), "expr", 42),
     "expr: json: cannot unmarshal number"),
    ("variable multi as a string", setter(lambda d: variable(d, "mapping"), "multi", "true"),
     "multi: json: cannot unmarshal string"),
    ("row collapsed as a string", setter(lambda d: first(d, "row"), "collapsed", "no"),
     "collapsed: json: cannot unmarshal string"),
]


def hard_coded_uid(doc):
    first(doc, "timeseries")["datasource"]["uid"] = "P1809F7CD0C75ACF3"


def no_target_datasource(doc):
    del target(doc)["datasource"]


def misspelt_metric(doc):
    t = target(doc)
    t["expr"] = t["expr"].replace("mapping:kesm_offset_lag:sum", "mapping:kesm_offset_lagg:sum")


def no_mapping_matcher(doc):
    t = first(doc, "table")["targets"][0]
    t["expr"] = t["expr"].replace('{mapping=~"$mapping"}', "")


def overlap(doc):
    ts = list(panels(doc, "timeseries"))
    ts[1]["gridPos"] = dict(ts[0]["gridPos"], x=ts[0]["gridPos"]["x"] + 1)


def duplicate_id(doc):
    ts = list(panels(doc, "timeseries"))
    ts[1]["id"] = ts[0]["id"]


def no_ref_id(doc):
    del target(doc)["refId"]


def empty_expr(doc):
    target(doc)["expr"] = " "


def other_variable(doc):
    t = target(doc)
    t["expr"] += " > $__interval_ms"


def process_unjoined(doc):
    for p in panels(doc, "timeseries"):
        for t in p["targets"]:
            if t["expr"].startswith("process_resident_memory_bytes"):
                t["expr"] = 'process_resident_memory_bytes{instance=~"$instance"}'
                return
    raise AssertionError("no process_resident_memory_bytes panel")


def no_datasource_variable(doc):
    doc["templating"]["list"] = [v for v in doc["templating"]["list"]
                                 if v["name"] != "datasource"]


def angular_panel(doc):
    first(doc, "timeseries")["type"] = "graph"


def wide_panel(doc):
    first(doc, "timeseries")["gridPos"]["w"] = 30


CHECKS = [
    ("a hard-coded datasource uid", hard_coded_uid, "every uid but the dashboard's"),
    ("a target without datasource", no_target_datasource, "datasource: missing"),
    ("a misspelt metric", misspelt_metric, "mapping:kesm_offset_lagg:sum is neither"),
    ("a selector without the mapping matcher", no_mapping_matcher,
     'select it with mapping=~"$mapping"'),
    ("overlapping panels", overlap, "gridPos overlaps"),
    ("a panel wider than the grid", wide_panel, "outside the 24-column grid"),
    ("a duplicate panel id", duplicate_id, "already used by"),
    ("a target without refId", no_ref_id, "refId missing"),
    ("an empty expr", empty_expr, "expr missing"),
    ("a Grafana variable the e2e test does not substitute", other_variable,
     "Grafana variable $__interval_ms"),
    ("process_* not joined with kesm_build_info", process_unjoined, "join with kesm_build_info"),
    ("no datasource variable", no_datasource_variable, "want a variable `datasource`"),
    ("a panel type the SDK does not know (Angular graph)", angular_panel,
     "is not one the SDK knows"),
]


def expect_rejections(cases):
    failures = 0
    with tempfile.TemporaryDirectory(prefix="kesm-grafana-") as tmp:
        for name, mutate, expected in cases:
            doc = load()
            mutated = copy.deepcopy(doc)
            mutate(mutated)
            if mutated == doc:
                print(f"FAIL {name}: the mutation changed nothing")
                failures += 1
                continue
            path = os.path.join(tmp, "kesm.json")
            with open(path, "w", encoding="utf-8") as f:
                json.dump(mutated, f, indent=2)
            rc, out = run_validator(path)
            if rc == 1 and expected in out:
                print(f"ok   {name}: rejected ({expected!r})")
            else:
                print(f"FAIL {name}: exit {rc}, want 1 and {expected!r} in:\n{out}")
                failures += 1
    return failures


def check_valid():
    rc, out = run_validator(DASHBOARD)
    print(out, end="")
    return 0 if rc == 0 else 1


def substitute(expr):
    for var in sorted(SUBSTITUTIONS, key=len, reverse=True):
        expr = expr.replace(var, SUBSTITUTIONS[var])
    return expr


def check_promql():
    promtool = shutil.which("promtool")
    if not promtool:
        print("promtool not found (Debian package prometheus; scripts/install-deps.sh)")
        return 1
    doc = load()
    rules, failures = [], 0
    for p in panels(doc):
        for t in p.get("targets", []):
            expr = substitute(t["expr"])
            if "$" in expr:
                print(f"FAIL {p['title']} [{t['refId']}]: a Grafana variable is left: {expr}")
                failures += 1
            rules.append({"record": f"kesm_dashboard_expr_{len(rules)}", "expr": expr})
    with tempfile.TemporaryDirectory(prefix="kesm-grafana-") as tmp:
        path = os.path.join(tmp, "exprs.yaml")
        with open(path, "w", encoding="utf-8") as f:
            # JSON is YAML: promtool reads it as a rules file.
            json.dump({"groups": [{"name": "kesm-dashboard-exprs", "rules": rules}]}, f, indent=2)
        proc = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True,
                              timeout=120)
        print(proc.stdout + proc.stderr, end="")
        if proc.returncode != 0:
            failures += 1
    print(f"{len(rules)} exprs checked")
    return 1 if failures else 0


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    check = sys.argv[1]
    if check == "valid":
        return check_valid()
    if check == "promql":
        return check_promql()
    cases = {"unknown-field": UNKNOWN_FIELD, "wrong-type": WRONG_TYPE, "checks": CHECKS}.get(check)
    if cases is None:
        print(__doc__, file=sys.stderr)
        return 2
    rc, out = run_validator(DASHBOARD)
    if rc != 0:
        print(f"the dashboard itself does not validate (exit {rc}):\n{out}")
        return 1
    failures = expect_rejections(cases)
    print(f"{len(cases) - failures}/{len(cases)} rejected as they should be")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
