"""An S3-compatible server for the tests: moto's standalone server, in its own process.

It runs with authentication on (INITIAL_NO_AUTH_ACTION_COUNT): the first requests, unsigned,
create an IAM user, its access key and a policy allowing it S3 on the test buckets; every
later request must carry a valid SigV4 signature by that key (a wrong secret is refused
403 SignatureDoesNotMatch) and be allowed by the policy. docs/architecture.md ("Photos in
an S3-compatible bucket") says what moto checks and what it does not.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

# The unsigned requests that set up the user: CreateUser, CreateAccessKey, PutUserPolicy.
_SETUP_REQUESTS = 3
REGION = "us-east-1"
_POLICY = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Action": "s3:*",
    "Resource": ["arn:aws:s3:::sf-test-*", "arn:aws:s3:::sf-test-*/*"]}]}


@dataclass(frozen=True)
class S3Server:
    process: subprocess.Popen[bytes]
    endpoint: str
    access_key_id: str
    secret_access_key: str

    def client(self) -> Any:
        """A boto3 S3 client with the test key: an independent client to check what the
        store wrote (blocking: call it in a thread from async tests)."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=self.access_key_id,
                            aws_secret_access_key=self.secret_access_key)

    def new_bucket(self) -> str:
        """A fresh empty bucket: tests share the server, not their objects."""
        name = f"sf-test-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name

    def url(self, bucket: str, prefix: str = "") -> str:
        """The STREETFEED_MEDIA_URL naming `bucket` on this server."""
        query = f"endpoint={self.endpoint}&region={REGION}"
        return f"s3://{bucket}?{query}&prefix={prefix}" if prefix else f"s3://{bucket}?{query}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def start_moto(port: int) -> S3Server:
    """moto's server on 127.0.0.1:`port`, answering and with its test user set up."""
    import boto3

    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(_SETUP_REQUESTS)}
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            break
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"moto server did not start (exit {process.poll()})")
        time.sleep(0.05)
    try:
        iam = boto3.client("iam", endpoint_url=endpoint, region_name=REGION,
                           aws_access_key_id="setup", aws_secret_access_key="setup")
        iam.create_user(UserName="streetfeed")
        key = iam.create_access_key(UserName="streetfeed")["AccessKey"]
        iam.put_user_policy(UserName="streetfeed", PolicyName="media",
                            PolicyDocument=json.dumps(_POLICY))
    except BaseException:
        process.kill()
        raise
    return S3Server(process, endpoint, key["AccessKeyId"], key["SecretAccessKey"])
