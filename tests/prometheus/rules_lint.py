#!/usr/bin/env python3
"""tests/prometheus/rules_lint.py -- what promtool does not check in deploy/prometheus/rules.yaml.

  rules_lint.py PROMTOOL

- the recording rules are exactly the ones the dashboard relies on (names and labels);
- every alert has `for:`, a severity label (critical or warning), summary, description and a
  runbook_url docs/operations.md#<alert in lower case>, and that section exists there
  ("#### <Alert>"), and the alert is in its Thresholds table;
- the PromQL in docs/operations.md's promql blocks parses (`promtool check rules` on a
  temporary file with each expression as a recording rule).
Exit 0 when all hold, 1 otherwise (each failure listed).
"""
import os
import re
import subprocess
import sys
import tempfile

import yaml

REPO = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))
RULES = os.path.join(REPO, "deploy", "prometheus", "rules.yaml")
OPERATIONS = os.path.join(REPO, "docs", "operations.md")

# (record, its fixed labels): what deploy/grafana/kesm.json queries.
RECORDS = sorted(
    [("mapping_outcome:kesm_events:rate1m", (("outcome", o),))
     for o in ("polled", "filtered", "invoked", "failed", "dropped", "on_failure", "committed")]
    + [("mapping_outcome:kesm_invocations:rate1m", ()),
       ("mapping:kesm_invocation_errors:ratio_rate5m", ()),
       ("mapping_le:kesm_invocation_duration_seconds_bucket:rate1m", ())]
    + [("mapping_quantile:kesm_invocation_duration_seconds:rate1m", (("quantile", q),))
       for q in ("0.5", "0.95", "0.99")]
    + [("mapping:kesm_offset_lag:sum", ())])

FAILURES = []


def check(cond, what):
    print(("  ok   " if cond else "  FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def promql_blocks(text):
    """Each expression of the ```promql blocks (continuation lines start with spaces)."""
    exprs = []
    for block in re.findall(r"```promql\n(.*?)```", text, re.S):
        cur = None
        for line in block.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                if cur:
                    exprs.append(cur)
                cur = None
            elif line.startswith(" ") and cur:
                cur += " " + line.strip()
            else:
                if cur:
                    exprs.append(cur)
                cur = line
        if cur:
            exprs.append(cur)
    return exprs


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    promtool = sys.argv[1]
    with open(RULES) as f:
        doc = yaml.safe_load(f)
    with open(OPERATIONS) as f:
        ops = f.read()
    groups = {g["name"]: g["rules"] for g in doc["groups"]}
    check(sorted(groups) == ["kesm.alerts", "kesm.rules"], f"groups kesm.rules and kesm.alerts: {sorted(groups)}")
    records = sorted((r["record"], tuple(sorted((r.get("labels") or {}).items())))
                     for r in groups.get("kesm.rules", []))
    check(records == RECORDS, f"kesm.rules holds exactly the {len(RECORDS)} recording rules of the dashboard")
    check(all("record" in r for r in groups.get("kesm.rules", []))
          and all("alert" in r for r in groups.get("kesm.alerts", [])),
          "recording rules in kesm.rules, alerts in kesm.alerts")
    headings = set(re.findall(r"^#### (\w+)$", ops, re.M))
    table = ops[ops.find("#### Thresholds"):]
    alerts = [r for r in groups.get("kesm.alerts", [])]
    for r in alerts:
        name, ann = r["alert"], r.get("annotations") or {}
        check("for" in r, f"{name}: has for:")
        check((r.get("labels") or {}).get("severity") in ("critical", "warning"),
              f"{name}: severity critical or warning")
        check(all(ann.get(k) for k in ("summary", "description", "runbook_url")),
              f"{name}: summary, description, runbook_url")
        check("$labels.mapping" in ann.get("summary", "") + ann.get("description", "")
              or name == "KesmDown", f"{name}: the annotations name the mapping")
        check(ann.get("runbook_url") == f"docs/operations.md#{name.lower()}" and name in headings,
              f"{name}: runbook_url docs/operations.md#{name.lower()}, section '#### {name}' exists")
        check(f"| [{name}](#{name.lower()}) |" in table, f"{name}: in the Thresholds table")
    exprs = promql_blocks(ops)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump({"groups": [{"name": "operations.md", "rules": [
            {"record": f"query:{i}", "expr": e} for i, e in enumerate(exprs)]}]}, f)
    try:
        p = subprocess.run([promtool, "check", "rules", f.name], capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    check(p.returncode == 0 and len(exprs) > 0,
          f"the {len(exprs)} PromQL expressions of docs/operations.md parse" + (': ' + p.stderr.strip()[:300] if p.returncode else ''))
    print(f"rules_lint.py: {'FAILED ' + str(len(FAILURES)) if FAILURES else 'passed'}")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
