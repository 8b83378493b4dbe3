"""Benchmark: parallel vs sequential AWS status scan under realistic API latency.

Starts a moto server on loopback (in a child process, as AWS is remote), seeds
two accounts x two regions, then makes every AWS call 50 ms slower (a botocore
`before-send` hook that sleeps, standing in for the round trip to a real
endpoint) and times the same scan run on the thread pool and one unit at a time.
It also records a parallel scan without the added latency: the client-side CPU
floor (signing, parsing) that no number of threads removes.

Beside the measured times it prints the critical path: the longest chain of calls
that must follow one another (an account's AssumeRole, then one unit's calls, each
waiting for the one before), times the added latency. No amount of parallelism
beats it; a parallel scan near it wastes nothing on waiting its turn.

Each timed scan starts from fresh credentials and clients, as a scan job does in its
own work horse (AssumeRole, then one client per (account, region, service)); one more
figure shows a parallel scan reusing them, as a process that scans again can.

Run: uv run python bench/aws_scan.py [--latency-ms 50] [--runs 3]
Writes bench/results/aws_scan.json.
"""

from __future__ import annotations

import argparse
import io
import logging
import multiprocessing
import os
import statistics
import threading
import time
import zipfile
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Any

import boto3
from harness import write_results
from moto.server import ThreadedMotoServer

from agents.aws.config import AwsAccount, AwsConfig
from agents.aws.scanner import ScanReport, resolve_scope, scan, scan_units
from agents.aws.sessions import AccountSessions

ACCOUNTS = [
    AwsAccount(name="prod"),
    AwsAccount(
        name="staging",
        role_arn="arn:aws:iam::222222222222:role/agentbot-aws-status",
        external_id="bench-external-id",
    ),
]
REGIONS = ["us-east-1", "eu-west-1"]


def seed_region(session: boto3.Session, account: str, region: str) -> None:
    """A modest fleet: instances, databases, functions, services, groups, tables, an alarm."""
    tag = f"{account}-{region}"
    ec2 = session.client("ec2", region_name=region)
    reservation = ec2.run_instances(ImageId="ami-12c6146b", MinCount=6, MaxCount=6)
    instances = [i["InstanceId"] for i in reservation["Instances"]]
    ec2.stop_instances(InstanceIds=instances[-1:])

    rds = session.client("rds", region_name=region)
    for index in range(2):
        rds.create_db_instance(
            DBInstanceIdentifier=f"{tag}-db-{index}",
            Engine="postgres",
            DBInstanceClass="db.t3.micro",
            MasterUsername="app",
            MasterUserPassword="not-a-real-password",
            AllocatedStorage=20,
        )

    iam = session.client("iam")
    try:
        role = iam.create_role(RoleName="bench-lambda", AssumeRolePolicyDocument="{}")["Role"]
    except iam.exceptions.EntityAlreadyExistsException:
        role = iam.get_role(RoleName="bench-lambda")["Role"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("handler.py", "def handle(event, context):\n    return event\n")
    lambda_client = session.client("lambda", region_name=region)
    cloudwatch = session.client("cloudwatch", region_name=region)
    for index in range(4):
        name = f"{tag}-fn-{index}"
        lambda_client.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=role["Arn"],
            Handler="handler.handle",
            Code={"ZipFile": archive.getvalue()},
        )
        cloudwatch.put_metric_data(
            Namespace="AWS/Lambda",
            MetricData=[
                {
                    "MetricName": metric,
                    "Dimensions": [{"Name": "FunctionName", "Value": name}],
                    "Value": value,
                    "Timestamp": datetime.now(UTC) - timedelta(minutes=5),
                }
                for metric, value in (("Invocations", 10.0), ("Errors", float(index % 2)))
            ],
        )
    cloudwatch.put_metric_alarm(
        AlarmName=f"{tag}-cpu",
        Namespace="AWS/EC2",
        MetricName="CPUUtilization",
        Statistic="Average",
        Period=60,
        EvaluationPeriods=1,
        Threshold=90,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=f"{tag}-cpu", StateValue="ALARM", StateReason="bench")

    ecs = session.client("ecs", region_name=region)
    ecs.create_cluster(clusterName="apps")
    ecs.register_task_definition(
        family="app", containerDefinitions=[{"name": "app", "image": "app:1", "memory": 128}]
    )
    for name, desired in (("api", 2), ("worker", 0)):
        ecs.create_service(
            cluster="apps", serviceName=name, taskDefinition="app", desiredCount=desired
        )

    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    elbv2 = session.client("elbv2", region_name=region)
    group_arn = elbv2.create_target_group(
        Name=f"{account}-web", Protocol="HTTP", Port=80, VpcId=vpc["VpcId"]
    )["TargetGroups"][0]["TargetGroupArn"]
    elbv2.register_targets(TargetGroupArn=group_arn, Targets=[{"Id": i} for i in instances[:3]])

    ec2.create_launch_template(
        LaunchTemplateName="batch", LaunchTemplateData={"ImageId": "ami-12c6146b"}
    )
    session.client("autoscaling", region_name=region).create_auto_scaling_group(
        AutoScalingGroupName="batch",
        LaunchTemplate={"LaunchTemplateName": "batch"},
        MinSize=0,
        MaxSize=4,
        DesiredCapacity=2,
        AvailabilityZones=[f"{region}a"],
    )

    dynamodb = session.client("dynamodb", region_name=region)
    for index in range(3):
        dynamodb.create_table(
            TableName=f"{tag}-table-{index}",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    s3 = session.client("s3", region_name=region)
    for index in range(2):
        if region == "us-east-1":
            s3.create_bucket(Bucket=f"{tag}-bucket-{index}")
        else:
            # The stubs list region names as literals; ours is a runtime string.
            placement: Any = {"LocationConstraint": region}
            s3.create_bucket(Bucket=f"{tag}-bucket-{index}", CreateBucketConfiguration=placement)


class CallMeter:
    """Counts API calls and, once armed, adds a fixed latency before each is sent."""

    def __init__(self, latency_seconds: float) -> None:
        self.latency_seconds = latency_seconds
        self.armed = False
        self.calls = 0
        self.sts_calls = 0
        self._lock = threading.Lock()

    def before_send(self, **_: Any) -> None:
        """Sleep like a network round trip; returning None lets the real request go."""
        if self.armed:
            time.sleep(self.latency_seconds)

    def before_call(self, model: Any = None, **_: Any) -> None:
        """Count one API operation (retries not included), AssumeRole apart."""
        with self._lock:
            self.calls += 1
            if model is not None and model.service_model.service_name == "sts":
                self.sts_calls += 1

    def take_calls(self) -> int:
        """Return and reset the call count."""
        with self._lock:
            calls, self.calls, self.sts_calls = self.calls, 0, 0
            return calls

    def take_unit_calls(self) -> tuple[int, int]:
        """Calls since the last take, and how many of them were AssumeRole."""
        with self._lock:
            calls, sts, self.calls, self.sts_calls = self.calls, self.sts_calls, 0, 0
            return calls - sts, sts


def critical_path_calls(config: AwsConfig, session: boto3.Session, meter: CallMeter) -> int:
    """The longest chain of dependent calls: AssumeRole (if any), then one unit's calls.

    Measured on a sequential scan from fresh credentials, whose progress callback fires
    after each unit in `scan_units` order: the calls between two callbacks are one
    unit's, and the AssumeRole calls come before the first.
    """
    units = scan_units(resolve_scope(config, session))
    per_unit: list[int] = []
    assumed = 0

    def unit_done(done: int, _total: int) -> None:
        nonlocal assumed
        calls, sts = meter.take_unit_calls()
        assumed += sts
        if done:
            per_unit.append(calls)

    scan(config, session, sequential=True, progress=unit_done)
    assert len(per_unit) == len(units)
    return max(
        calls + (1 if unit.account.role_arn and assumed else 0)
        for unit, calls in zip(units, per_unit, strict=True)
    )


def serve_moto(port_queue: Queue[int], stop: Event) -> None:
    """Child-process body: run a moto server until told to stop."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # Server-side moto setting: skip loading thousands of public AMIs per EC2 backend.
    os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    port_queue.put(server.get_host_and_port()[1])
    stop.wait()
    server.stop()


def timed(
    config: AwsConfig,
    session: boto3.Session,
    *,
    sequential: bool,
    sessions: AccountSessions | None = None,
) -> tuple[float, ScanReport]:
    """Run one scan and return its wall-clock seconds and report."""
    started = time.perf_counter()
    report = scan(config, session, sequential=sequential, sessions=sessions)
    return time.perf_counter() - started, report


def main() -> None:
    """Seed, scan both ways under latency, print and save the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-workers", type=int, default=AwsConfig().max_workers)
    args = parser.parse_args()

    # The server runs in its own process, as AWS would be remote: in this process
    # it would compete with the scan's threads for the GIL and hide the parallelism.
    context = multiprocessing.get_context("spawn")
    port_queue: Queue[int] = context.Queue()
    stop = context.Event()
    server = context.Process(target=serve_moto, args=(port_queue, stop), daemon=True)
    server.start()
    port = port_queue.get(timeout=60)
    # This process only: point the standard AWS variables at the local server.
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION=REGIONS[0],
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    os.environ.pop("AWS_PROFILE", None)
    try:
        config = AwsConfig(accounts=ACCOUNTS, regions=REGIONS, max_workers=args.max_workers)
        session = boto3.Session()
        sessions = AccountSessions(session, config)
        for account in ACCOUNTS:
            account_session = sessions.session(account)
            for region in REGIONS:
                seed_region(account_session, account.name, region)

        meter = CallMeter(args.latency_ms / 1000)
        session.events.register("before-send", meter.before_send)
        session.events.register("before-call", meter.before_call)
        # Warm-up without latency: loads service models and moto backends and makes
        # the clients once, so neither timed mode pays those one-off costs.
        reused = AccountSessions(session, config)
        timed(config, session, sequential=False, sessions=reused)
        no_latency, _ = timed(config, session, sequential=False)
        meter.take_calls()
        chain = critical_path_calls(config, session, meter)
        meter.armed = True

        parallel_times, sequential_times, reused_times = [], [], []
        for _ in range(args.runs):
            seconds, report = timed(config, session, sequential=False)
            parallel_times.append(seconds)
            calls = meter.take_calls()
            reused_times.append(timed(config, session, sequential=False, sessions=reused)[0])
            meter.take_calls()
            seconds, sequential_report = timed(config, session, sequential=True)
            sequential_times.append(seconds)
            meter.take_calls()
            assert len(sequential_report.records) == len(report.records)
            assert not report.errors and not sequential_report.errors, report.errors
    finally:
        stop.set()
        server.join(timeout=10)

    parallel = statistics.median(parallel_times)
    sequential = statistics.median(sequential_times)
    critical = chain * args.latency_ms / 1000
    reused_parallel = statistics.median(reused_times)
    results = {
        "latency_ms_per_call": args.latency_ms,
        "accounts": len(ACCOUNTS),
        "regions": len(REGIONS),
        "services": len(config.services),
        "scan_units": report.units_total,
        "api_calls_per_scan": calls,
        "records": len(report.records),
        "max_workers": args.max_workers,
        "runs": args.runs,
        "server": "moto ThreadedMotoServer, separate process, loopback",
        "parallel_seconds_without_added_latency": round(no_latency, 3),
        "parallel_seconds_median": round(parallel, 3),
        "sequential_seconds_median": round(sequential, 3),
        "parallel_seconds_all": [round(t, 3) for t in parallel_times],
        "sequential_seconds_all": [round(t, 3) for t in sequential_times],
        "speedup": round(sequential / parallel, 2),
        "parallel_seconds_reusing_clients_median": round(reused_parallel, 3),
        "critical_path_calls": chain,
        "critical_path_seconds": round(critical, 3),
        "parallel_over_critical_path": round(parallel / critical, 2),
        "boto3": version("boto3"),
        "moto": version("moto"),
        # The parallel figure is bounded by client-side CPU: write_results adds the
        # machine's CPUs and load beside it.
        "summary": {
            f"parallel ({args.max_workers} workers), median": f"{parallel:.2f} s",
            "sequential, median": f"{sequential:.2f} s",
            "speedup": f"{sequential / parallel:.1f}x",
            "parallel reusing credentials and clients": f"{reused_parallel:.2f} s",
            "critical path (floor), parallel over it": (
                f"{critical:.2f} s ({chain} calls), {parallel / critical:.2f}x"
            ),
            "API calls per scan": calls,
            "added latency per call": f"{args.latency_ms:g} ms",
        },
    }
    path = write_results("aws_scan", results)

    print(
        f"{results['scan_units']} units, {calls} API calls, {results['records']} resources, "
        f"{args.latency_ms:g} ms added per call"
    )
    print(f"parallel   ({args.max_workers} workers): {parallel:.2f} s (median of {args.runs})")
    print(f"sequential             : {sequential:.2f} s (median of {args.runs})")
    print(f"speedup                : {sequential / parallel:.1f}x")
    print(f"parallel, reusing credentials and clients: {reused_parallel:.2f} s")
    print(
        f"critical path          : {critical:.2f} s ({chain} dependent calls x "
        f"{args.latency_ms:g} ms); parallel is {parallel / critical:.2f}x of it"
    )
    print(f"parallel, no added latency: {no_latency:.2f} s (client-side CPU floor)")
    print(f"wrote {path.relative_to(path.parents[2])}")


if __name__ == "__main__":
    main()
