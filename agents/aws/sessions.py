"""Per-account AWS credentials and clients for one scan.

Every client is created from the *base* session with the account's credentials
passed explicitly. That keeps everything configured on the base session in
force for every account: `AWS_PROFILE`, `AWS_REGION`, `AWS_ENDPOINT_URL` and
the config file, and any botocore event hooks registered on `base_session.events`
(call counting, tracing, test fault injection). A separate `boto3.Session` per
account would silently drop those hooks.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypedDict

from agents.aws.config import AwsAccount, AwsConfig

# boto3 and botocore are imported where clients are made: a process that never calls
# AWS (`agentbot serve`) never loads them.
if TYPE_CHECKING:
    import boto3
    from botocore.config import Config
    from mypy_boto3_autoscaling import AutoScalingClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sts import STSClient

# Re-assume a role this long before its credentials expire, so that no call in
# flight is signed with credentials about to lapse.
_REFRESH_MARGIN = timedelta(minutes=5)


class AssumeRoleError(Exception):
    """STS AssumeRole failed for an account; none of its resources can be scanned."""

    def __init__(self, account: str, role_arn: str, message: str) -> None:
        super().__init__(f"cannot assume {role_arn} for account {account}: {message}")
        self.account = account
        self.role_arn = role_arn
        self.message = message


@dataclass(frozen=True)
class AccountCredentials:
    """Temporary credentials obtained by assuming an account's role."""

    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime

    def __repr__(self) -> str:
        # Keep secrets out of logs and tracebacks.
        return f"AccountCredentials(access_key_id={self.access_key_id!r}, ...)"


DEFAULT_MAX_ATTEMPTS = 5


def client_config(config: AwsConfig, base_session: boto3.Session | None = None) -> Config:
    """Build the botocore client configuration the scan uses for every call.

    Retries follow, in order: `max_attempts` / `retry_mode` when set in `[aws]`; else
    boto3's standard configuration (`AWS_MAX_ATTEMPTS`, `AWS_RETRY_MODE`, or
    `max_attempts` / `retry_mode` in the profile), which botocore reads itself when
    the key is left out here; else 5 attempts (botocore's own default is 3) in
    standard mode, which backs off on throttling.

    Args:
        config: The scan configuration.
        base_session: The session clients are made from; its configuration is
            consulted for retry settings `[aws]` leaves unset.

    Returns:
        A `Config` with connect/read timeouts from `call_timeout_seconds` and retries.
    """
    from botocore.config import Config

    standard = base_session._session if base_session is not None else None
    retries: dict[str, Any] = {}
    if config.max_attempts is not None:
        # total_max_attempts counts the first call, as AWS_MAX_ATTEMPTS does; the
        # older "max_attempts" key of Config counts only retries.
        retries["total_max_attempts"] = config.max_attempts
    elif standard is None or standard.get_config_variable("max_attempts") is None:
        retries["total_max_attempts"] = DEFAULT_MAX_ATTEMPTS
    if config.retry_mode is not None:
        retries["mode"] = config.retry_mode
    # Left out, botocore takes AWS_RETRY_MODE or the profile's, else its own default:
    # standard, which backs off on throttling.
    return Config(
        connect_timeout=config.call_timeout_seconds,
        read_timeout=config.call_timeout_seconds,
        retries=retries,  # type: ignore[arg-type]
        # One connection per worker thread that may talk to the same endpoint.
        max_pool_connections=max(10, config.max_workers),
        user_agent_extra="agentbot-aws-status",
    )


class AccountSessions:
    """Credentials (cached per account) and clients for one scan.

    Thread-safe: scan workers share one instance. Clients are made once per
    (account, region, service) and reused, by every unit of a scan and by later scans
    given the same instance: making a botocore client costs more CPU than the calls
    a unit makes with it. A failure to assume a role is kept until `forget_failures`
    (each scan starts with it), so one scan's refusal is not the next one's answer.
    """

    def __init__(
        self,
        base_session: boto3.Session,
        config: AwsConfig,
        *,
        sts_region: str | None = None,
    ) -> None:
        """Prepare to hand out credentials and clients.

        Args:
            base_session: Session holding the bot's own identity; roles are
                assumed from it and accounts without a role use it directly.
            config: The scan configuration (timeouts, retries, session name).
            sts_region: Region of the STS endpoint used for AssumeRole; defaults
                to the base session's region, then to the first configured region.
        """
        self._base = base_session
        self._config = config
        self._client_config = client_config(config, base_session)
        self._sts_region = (
            sts_region
            or base_session.region_name
            or (config.regions[0] if config.regions else None)
            or "us-east-1"
        )
        # botocore's client creation is not thread-safe on a shared session.
        self._create_lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._account_locks: dict[str, threading.Lock] = {}
        self._credentials: dict[str, AccountCredentials | AssumeRoleError] = {}
        self._clients: dict[tuple[str, str, str | None], RegionClients] = {}

    def forget_failures(self) -> None:
        """Let the next request for a refused role ask STS again."""
        with self._cache_lock:
            for name, cached in list(self._credentials.items()):
                if isinstance(cached, AssumeRoleError):
                    del self._credentials[name]

    def credentials(self, account: AwsAccount) -> AccountCredentials | None:
        """Return the account's credentials, assuming its role at most once per expiry.

        Args:
            account: The account.

        Returns:
            Temporary credentials, or None when the account uses the base
            session's own credentials (no `role_arn`).

        Raises:
            AssumeRoleError: STS refused or could not be reached; the failure is
                cached so that the account's other units fail fast.
        """
        if account.role_arn is None:
            return None
        with self._cache_lock:
            lock = self._account_locks.setdefault(account.name, threading.Lock())
        with lock:
            cached = self._credentials.get(account.name)
            if isinstance(cached, AssumeRoleError):
                raise cached
            if cached is not None and cached.expiration - _REFRESH_MARGIN > datetime.now(UTC):
                return cached
            try:
                fresh = self._assume(account, account.role_arn)
            except AssumeRoleError as error:
                self._credentials[account.name] = error
                raise
            self._credentials[account.name] = fresh
            return fresh

    def _assume(self, account: AwsAccount, role_arn: str) -> AccountCredentials:
        from botocore.exceptions import BotoCoreError, ClientError

        with self._create_lock:
            sts: STSClient = self._base.client(
                "sts", region_name=self._sts_region, config=self._client_config
            )
        try:
            if account.external_id is None:
                response = sts.assume_role(
                    RoleArn=role_arn, RoleSessionName=self._config.role_session_name
                )
            else:
                response = sts.assume_role(
                    RoleArn=role_arn,
                    RoleSessionName=self._config.role_session_name,
                    ExternalId=account.external_id,
                )
        except ClientError as error:
            details = error.response.get("Error", {})
            message = f"{details.get('Code', 'Error')}: {details.get('Message', '')}".strip()
            raise AssumeRoleError(account.name, role_arn, message) from error
        except BotoCoreError as error:
            raise AssumeRoleError(account.name, role_arn, str(error)) from error
        issued = response["Credentials"]
        return AccountCredentials(
            access_key_id=issued["AccessKeyId"],
            secret_access_key=issued["SecretAccessKey"],
            session_token=issued["SessionToken"],
            expiration=issued["Expiration"],
        )

    def session(self, account: AwsAccount) -> boto3.Session:
        """Return a standalone boto3 Session for the account.

        For callers outside the scan that want a plain Session. Unlike
        `clients()`, event hooks registered on the base session do not carry over.

        Args:
            account: The account.

        Returns:
            The base session itself when the account has no role, otherwise a
            new Session holding the assumed role's temporary credentials.
        """
        import boto3

        creds = self.credentials(account)
        if creds is None:
            return self._base
        profile = self._base.profile_name
        return boto3.Session(
            aws_access_key_id=creds.access_key_id,
            aws_secret_access_key=creds.secret_access_key,
            aws_session_token=creds.session_token,
            region_name=self._base.region_name,
            # Keep the profile's non-credential settings (endpoints, etc.) when it exists.
            profile_name=profile if profile in self._base.available_profiles else None,
        )

    def clients(self, account: AwsAccount, region: str) -> RegionClients:
        """Return a factory of typed clients for one account and region.

        Args:
            account: The account.
            region: The region the clients talk to.

        Returns:
            A `RegionClients` bound to the account's credentials, the same one for as
            long as those credentials last.

        Raises:
            AssumeRoleError: The account's role could not be assumed.
        """
        credentials = self.credentials(account)
        key = (account.name, region, credentials.access_key_id if credentials else None)
        with self._cache_lock:
            found = self._clients.get(key)
            if found is None:
                # Clients of credentials now replaced are dropped with them.
                for old in [k for k in self._clients if k[:2] == key[:2]]:
                    del self._clients[old]
                found = self._clients[key] = RegionClients(
                    self._base,
                    region,
                    credentials,
                    config=self._client_config,
                    create_lock=self._create_lock,
                )
            return found


class _ClientArgs(TypedDict):
    region_name: str
    config: Config
    aws_access_key_id: str | None
    aws_secret_access_key: str | None
    aws_session_token: str | None


class RegionClients:
    """Typed boto3 clients for one (account, region), each made on first use and kept."""

    def __init__(
        self,
        base_session: boto3.Session,
        region: str,
        credentials: AccountCredentials | None,
        *,
        config: Config,
        create_lock: threading.Lock,
    ) -> None:
        """Bind clients to a region and credentials.

        Args:
            base_session: Session the clients are created from.
            region: Region the clients talk to.
            credentials: Assumed-role credentials, or None for the base session's own.
            config: botocore client configuration (timeouts, retries).
            create_lock: Serialises client creation on the shared base session.
        """
        self.region = region
        self._base = base_session
        self._lock = create_lock
        self._made: dict[str, Any] = {}
        self._args = _ClientArgs(
            region_name=region,
            config=config,
            aws_access_key_id=credentials.access_key_id if credentials else None,
            aws_secret_access_key=credentials.secret_access_key if credentials else None,
            aws_session_token=credentials.session_token if credentials else None,
        )

    def ec2(self) -> EC2Client:
        """Return an EC2 client."""
        return self._client("ec2")  # type: ignore[no-any-return]

    def rds(self) -> RDSClient:
        """Return an RDS client."""
        return self._client("rds")  # type: ignore[no-any-return]

    def lambda_(self) -> LambdaClient:
        """Return a Lambda client."""
        return self._client("lambda")  # type: ignore[no-any-return]

    def cloudwatch(self) -> CloudWatchClient:
        """Return a CloudWatch client."""
        return self._client("cloudwatch")  # type: ignore[no-any-return]

    def ecs(self) -> ECSClient:
        """Return an ECS client."""
        return self._client("ecs")  # type: ignore[no-any-return]

    def elbv2(self) -> ElasticLoadBalancingv2Client:
        """Return an Elastic Load Balancing v2 client."""
        return self._client("elbv2")  # type: ignore[no-any-return]

    def autoscaling(self) -> AutoScalingClient:
        """Return an Auto Scaling client."""
        return self._client("autoscaling")  # type: ignore[no-any-return]

    def s3(self) -> S3Client:
        """Return an S3 client."""
        return self._client("s3")  # type: ignore[no-any-return]

    def dynamodb(self) -> DynamoDBClient:
        """Return a DynamoDB client."""
        return self._client("dynamodb")  # type: ignore[no-any-return]

    def _client(self, service: str) -> Any:
        with self._lock:
            made = self._made.get(service)
            if made is None:
                create: Any = self._base.client  # typed per service name by the stubs
                made = self._made[service] = create(service, **self._args)
            return made
