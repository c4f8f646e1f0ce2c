#!/usr/bin/env python3
"""botocore_sign.py CASES.json -- sign tests/aws/sigv4_cases.json with botocore.

For each case: botocore.auth.SigV4Auth signs the request at the file's fixed time, and this
prints the headers it set and its canonical request, in the format of kesm_sigv4_sign
(tests/aws/sigv4_sign.cc); tests/aws/botocore.sh diffs the two outputs byte for byte.
Asserts on botocore's side first:
  - canonical_contains: each string occurs in botocore's canonical request (the ARN's
    double encoding, the signed session token), so the diff cannot pass on a case that
    does not show what it is meant to show;
  - lambda_invoke: botocore's own Lambda client, calling Invoke with these parameters,
    puts exactly this case's target (path and query) on the wire. The request is captured
    at before-send and never leaves the process.
Needs botocore (tests/aws/requirements.txt; run through the venv botocore.sh sets up).
"""
import datetime
import json
import sys
from unittest import mock
from urllib.parse import urlsplit

import botocore.auth
import botocore.session
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


class CapturingSigV4Auth(botocore.auth.SigV4Auth):
    """SigV4Auth keeping the canonical request it signed."""

    canonical = None

    def canonical_request(self, request):
        self.canonical = super().canonical_request(request)
        return self.canonical


class Sent(Exception):
    """Raised at before-send: the captured request goes no further."""


def fail(name, why):
    sys.exit(f"botocore_sign.py: case {name}: {why}")


def credentials_of(doc, case):
    c = doc["credentials"][case["credentials"]]
    return c["access_key_id"], c["secret_access_key"], c["session_token"] or None


def host_of(case):
    hosts = [v for n, v in case["headers"] if n.lower() == "host"]
    if len(hosts) != 1:
        fail(case["name"], "needs exactly one Host header")
    return hosts[0]


def sign(doc, case, now):
    access_key, secret_key, token = credentials_of(doc, case)
    request = AWSRequest(method=case["method"], url=f"https://{host_of(case)}{case['target']}",
                         data=case["body"].encode("utf-8"))
    for name, value in case["headers"]:
        request.headers[name] = value
    auth = CapturingSigV4Auth(Credentials(access_key, secret_key, token), case["service"],
                              case["region"])
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=now):
        auth.add_auth(request)
    for want in case.get("canonical_contains", []):
        if want not in auth.canonical:
            fail(case["name"], f"botocore's canonical request lacks {want!r}:\n{auth.canonical}")
    return request, auth.canonical


def lambda_client_target(doc, case):
    """The path and query botocore's Lambda client sends for the case's Invoke call."""
    params = dict(case["lambda_invoke"])
    region = params.pop("region", case["region"])
    access_key, secret_key, token = credentials_of(doc, case)
    client = botocore.session.get_session().create_client(
        "lambda", region_name=region, aws_access_key_id=access_key,
        aws_secret_access_key=secret_key, aws_session_token=token)
    sent = {}

    def capture(request, **_):
        sent["url"] = request.url
        raise Sent()

    client.meta.events.register("before-send.lambda.Invoke", capture)
    try:
        client.invoke(InvocationType="RequestResponse", Payload=case["body"].encode("utf-8"),
                      **params)
    except Sent:
        pass
    if "url" not in sent:
        fail(case["name"], "botocore's Lambda client sent nothing")
    parts = urlsplit(sent["url"])
    return parts.path + ("?" + parts.query if parts.query else "")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: botocore_sign.py CASES.json")
    with open(sys.argv[1], encoding="utf-8") as f:
        doc = json.load(f)
    # botocore takes a naive UTC datetime.
    now = datetime.datetime.strptime(doc["time"], "%Y-%m-%dT%H:%M:%SZ")
    out = []
    for case in doc["cases"]:
        request, canonical = sign(doc, case, now)
        if "lambda_invoke" in case:
            target = lambda_client_target(doc, case)
            if target != case["target"]:
                fail(case["name"], f"botocore's Lambda client sends {target!r}, "
                     f"the case says {case['target']!r}")
        out.append(f"== {case['name']}\n"
                   f"X-Amz-Date: {request.headers['X-Amz-Date']}\n"
                   f"X-Amz-Security-Token: {request.headers.get('X-Amz-Security-Token', '')}\n"
                   f"Authorization: {request.headers['Authorization']}\n"
                   f"-- canonical request\n{canonical}\n")
    sys.stdout.buffer.write("".join(out).encode("utf-8"))


if __name__ == "__main__":
    main()
