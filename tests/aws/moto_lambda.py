#!/usr/bin/env python3
"""tests/aws/moto_lambda.py -- provisions a running moto server for kesm's awsLambda tests.

    moto_lambda.py provision ENDPOINT STATE_JSON

Runs in the moto venv (boto3 is there: tests/aws/moto.sh setup). The server must run with
INITIAL_NO_AUTH_ACTION_COUNT=3 (moto.sh start does): moto lets the first 3 AWS actions through
unauthenticated and checks the SigV4 signature and the IAM policies of every action after them
(moto/core/responses.py, ActionAuthenticatorMixin). Those 3 are: create the IAM user, give it an
allow-all inline policy, create its access key. Everything after is signed with that key.

STATE_JSON gets: endpoint, region, the user's static key, session credentials of an assumed role
(STS AssumeRole: moto authenticates ASIA keys of assumed roles), the role ARN (for
AssumeRoleWithWebIdentity), the function's name and ARN, and its alias "live".
boto3 is used because it is what moto is tested with; kesm signs its own requests.
"""

import io
import json
import sys
import urllib.request
import zipfile

import boto3
from botocore.config import Config

REGION = "eu-west-1"
ALLOW_ALL = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"},
            {
                "Effect": "Allow",
                "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/kesm"},
                "Action": "sts:AssumeRoleWithWebIdentity",
            },
        ],
    }
)
HANDLER = b"def handler(event, context):\n    return {'records': len(event.get('records', {}))}\n"
NO_RETRIES = Config(retries={"max_attempts": 1, "mode": "standard"})


def client(service, endpoint, key, secret, token=None):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=NO_RETRIES,  # a retried action would shift moto's unauthenticated count
    )


def provision(endpoint, state_path):
    request = urllib.request.Request(
        endpoint + "/moto-api/config",
        data=json.dumps({"lambda": {"use_docker": False}}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(request, timeout=10).read()

    # The 3 unauthenticated actions (any key works for them).
    iam = client("iam", endpoint, "AKIDBOOTSTRAP", "bootstrap")
    iam.create_user(UserName="kesm")
    iam.put_user_policy(UserName="kesm", PolicyName="all", PolicyDocument=ALLOW_ALL)
    key = iam.create_access_key(UserName="kesm")["AccessKey"]
    static = {"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}

    # From here on, moto checks every signature.
    iam = client("iam", endpoint, static["id"], static["secret"])
    role = iam.create_role(RoleName="kesm-invoker", AssumeRolePolicyDocument=TRUST)["Role"]
    iam.put_role_policy(RoleName="kesm-invoker", PolicyName="all", PolicyDocument=ALLOW_ALL)

    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("handler.py", HANDLER)
    lam = client("lambda", endpoint, static["id"], static["secret"])
    fn = lam.create_function(
        FunctionName="kesm-fn",
        Runtime="python3.12",
        Role=role["Arn"],
        Handler="handler.handler",
        Code={"ZipFile": code.getvalue()},
    )
    version = lam.publish_version(FunctionName="kesm-fn")["Version"]
    lam.create_alias(FunctionName="kesm-fn", Name="live", FunctionVersion=version)

    sts = client("sts", endpoint, static["id"], static["secret"])
    assumed = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="kesm-session")["Credentials"]
    state = {
        "endpoint": endpoint,
        "region": REGION,
        "static": static,
        "session": {
            "id": assumed["AccessKeyId"],
            "secret": assumed["SecretAccessKey"],
            "token": assumed["SessionToken"],
        },
        "role_arn": role["Arn"],
        "function_name": fn["FunctionName"],
        "function_arn": fn["FunctionArn"],
        "alias": "live",
    }
    with open(state_path, "w", encoding="utf-8") as out:
        json.dump(state, out, indent=2)


def main(argv):
    if len(argv) != 4 or argv[1] != "provision":
        sys.stderr.write(__doc__)
        return 2
    provision(argv[2].rstrip("/"), argv[3])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
