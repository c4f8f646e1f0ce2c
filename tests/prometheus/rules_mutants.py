#!/usr/bin/env python3
"""tests/prometheus/rules_mutants.py -- proves that tests/prometheus/rules_test.yaml can fail.

  rules_mutants.py PROMTOOL

For every alert of deploy/prometheus/rules.yaml it writes a copy of the rules with that alert's
`for:` one evaluation (1m) shorter (or 1m when it is 0s), one with its threshold moved to
the other side of the boundary the tests probe, and, for every rule that leaves out standby
replicas (`unless on (job, instance) kesm_leader == 0`), one without that, then runs `promtool test rules` on each copy:
each must fail. A mutant that passes means the unit tests do not pin that alert down. Exit 0
when every mutant failed, 1 otherwise (the survivors are listed).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

REPO = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))
RULES = os.path.join(REPO, "deploy", "prometheus", "rules.yaml")
TESTS = os.path.join(REPO, "tests", "prometheus", "rules_test.yaml")

# alert -> (literal in its expr, replacement): the threshold each alert's tests sit on.
THRESHOLDS = {
    "KesmLagGrowing": ("> 1000", "> 999"),
    "KesmPartitionStalled": ("> 300", "> 299"),
    "KesmMappingStalled": ("> 300", "> 299"),
    "KesmPollersAtMaximum": ("> 1000", "> 999"),
    "KesmMappingDisabled": ("== 1", "== 0"),
    "KesmLagProbeFailing": ("== 1", "== 0"),
    "KesmRecordsDropped": ("> 0", "> 5"),
    "KesmOnFailureDeliveries": ("> 0", "> 5"),
    "KesmFunctionErrorRatio": ("> 0.05", "> 0.049"),
    "KesmCommitErrors": ("> 0.05", "> 0.049"),
    "KesmPollersBelowDesired": ("<", "<="),
    "KesmDown": ('job="kesm"', 'job="kesm-other"'),
}


# Leaves out replicas that stand by (their gauges are frozen); removing it must be noticed.
GUARD = " unless on (job, instance) kesm_leader == 0"


def seconds(d):
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)(ms|s|m|h|d)", d))


def mutants(doc):
    """(description, rules document) for every mutation."""
    for gi, group in enumerate(doc["groups"]):
        for ri, rule in enumerate(group["rules"]):
            if "alert" not in rule:
                if GUARD in rule["expr"]:
                    m = yaml.safe_load(yaml.safe_dump(doc))
                    m["groups"][gi]["rules"][ri]["expr"] = rule["expr"].replace(GUARD, "")
                    yield f"{rule['record']}: without the standby guard", m
                continue
            name = rule["alert"]
            if name not in THRESHOLDS:
                raise SystemExit(f"{name}: no threshold mutation known: add it to THRESHOLDS")
            shorter = seconds(rule.get("for", "0s")) - 60
            new_for = f"{shorter}s" if shorter > 0 else ("0s" if shorter == 0 else "1m")
            old, new = THRESHOLDS[name]
            if old not in rule["expr"]:
                raise SystemExit(f"{name}: {old!r} is not in its expr")
            changes = [(f"for: {rule.get('for')} -> {new_for}", ("for", new_for)),
                       (f"{old} -> {new}", ("expr", rule["expr"].replace(old, new, 1)))]
            if GUARD in rule["expr"]:
                changes.append(("without the standby guard", ("expr", rule["expr"].replace(GUARD, ""))))
            for what, change in changes:
                m = yaml.safe_load(yaml.safe_dump(doc))
                m["groups"][gi]["rules"][ri][change[0]] = change[1]
                yield f"{name}: {what}", m


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    promtool = sys.argv[1]
    with open(RULES) as f:
        doc = yaml.safe_load(f)
    tmp = tempfile.mkdtemp(prefix="kesm-rules-mutants.")
    survivors, n = [], 0
    try:
        # The test file names its rules relative to itself: keep the same layout.
        os.makedirs(os.path.join(tmp, "deploy", "prometheus"))
        os.makedirs(os.path.join(tmp, "tests", "prometheus"))
        shutil.copy(TESTS, os.path.join(tmp, "tests", "prometheus"))
        for what, m in mutants(doc):
            n += 1
            with open(os.path.join(tmp, "deploy", "prometheus", "rules.yaml"), "w") as f:
                yaml.safe_dump(m, f, sort_keys=False)
            p = subprocess.run([promtool, "test", "rules",
                                os.path.join(tmp, "tests", "prometheus", "rules_test.yaml")],
                               capture_output=True, text=True, timeout=120)
            caught = p.returncode != 0 and "FAILED" in p.stdout + p.stderr
            print(("  caught    " if caught else "  SURVIVED  ") + what, flush=True)
            if not caught:
                survivors.append(what)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"rules_mutants.py: {n - len(survivors)} of {n} mutants caught by the unit tests")
    return 1 if survivors or n == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
