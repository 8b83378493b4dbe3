"""The price table savings estimates are computed from.

The defaults are AWS's published on-demand list prices for us-east-1 (Linux, no
discounts), in US dollars. Other regions cost more or less; operators override any
entry per region in `[cost.optimize.prices.<region>]` (or for every region under
`default`). A month is 730 hours, as AWS's own pricing pages count it.

Estimates are list-price estimates: savings plans, reserved instances, credits and
the free tier are not known here, so the report says "estimated" next to every figure.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

HOURS_PER_MONTH = 730.0
GP3_FREE_IOPS = 3000
GP3_FREE_THROUGHPUT_MBPS = 125

DEFAULT_EBS_GB_MONTH: dict[str, float] = {
    "gp2": 0.10,
    "gp3": 0.08,
    "io1": 0.125,
    "io2": 0.125,
    "st1": 0.045,
    "sc1": 0.015,
    "standard": 0.05,
}

# On-demand Linux, us-east-1, per hour.
DEFAULT_INSTANCE_HOUR: dict[str, float] = {
    "t2.nano": 0.0058,
    "t2.micro": 0.0116,
    "t2.small": 0.023,
    "t2.medium": 0.0464,
    "t2.large": 0.0928,
    "t3.nano": 0.0052,
    "t3.micro": 0.0104,
    "t3.small": 0.0208,
    "t3.medium": 0.0416,
    "t3.large": 0.0832,
    "t3.xlarge": 0.1664,
    "t3.2xlarge": 0.3328,
    "t3a.micro": 0.0094,
    "t3a.small": 0.0188,
    "t3a.medium": 0.0376,
    "t3a.large": 0.0752,
    "t4g.micro": 0.0084,
    "t4g.small": 0.0168,
    "t4g.medium": 0.0336,
    "t4g.large": 0.0672,
    "m5.large": 0.096,
    "m5.xlarge": 0.192,
    "m5.2xlarge": 0.384,
    "m5.4xlarge": 0.768,
    "m6i.large": 0.096,
    "m6i.xlarge": 0.192,
    "m6i.2xlarge": 0.384,
    "m6g.large": 0.077,
    "m6g.xlarge": 0.154,
    "m7i.large": 0.1008,
    "m7g.large": 0.0816,
    "c5.large": 0.085,
    "c5.xlarge": 0.17,
    "c5.2xlarge": 0.34,
    "c6i.large": 0.085,
    "c6i.xlarge": 0.17,
    "c6g.large": 0.068,
    "c7g.large": 0.0725,
    "r5.large": 0.126,
    "r5.xlarge": 0.252,
    "r5.2xlarge": 0.504,
    "r6i.large": 0.126,
    "r6g.large": 0.1008,
}


class PriceTable(BaseModel):
    """Unit prices in USD. Any subset can be given in the configuration file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ebs_gb_month: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_EBS_GB_MONTH),
        description="EBS storage per GB-month, by volume type",
    )
    gp3_iops_month: float = Field(0.005, ge=0, description="per gp3 IOPS above 3,000")
    gp3_throughput_mbps_month: float = Field(0.04, ge=0, description="per gp3 MB/s above 125")
    io_iops_month: float = Field(0.065, ge=0, description="per provisioned io1/io2 IOPS")
    snapshot_gb_month: float = Field(0.05, ge=0, description="EBS snapshot, standard tier")
    public_ipv4_hour: float = Field(0.005, ge=0, description="an Elastic IP, in use or not")
    instance_hour: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_INSTANCE_HOUR),
        description="on-demand price per hour, by instance type",
    )

    def merged(self, override: PriceTable) -> PriceTable:
        """This table with the entries `override` sets explicitly replacing ours.

        Dictionaries merge key by key, so overriding one instance type keeps the rest.
        """
        values: dict[str, Any] = self.model_dump()
        for name in override.model_fields_set:
            given = getattr(override, name)
            values[name] = {**values[name], **given} if isinstance(given, dict) else given
        return PriceTable.model_validate(values)

    def volume_month(
        self, volume_type: str, size_gb: int, iops: int | None = None, throughput: int | None = None
    ) -> float | None:
        """Monthly cost of an EBS volume, or None when its type has no price here.

        Args:
            volume_type: gp2, gp3, io1, ...
            size_gb: Size in GiB.
            iops: Provisioned IOPS (gp3, io1, io2).
            throughput: Provisioned throughput in MB/s (gp3).
        """
        per_gb = self.ebs_gb_month.get(volume_type)
        if per_gb is None:
            return None
        cost = per_gb * size_gb
        if volume_type == "gp3":
            cost += max(0, (iops or GP3_FREE_IOPS) - GP3_FREE_IOPS) * self.gp3_iops_month
            extra = max(0, (throughput or GP3_FREE_THROUGHPUT_MBPS) - GP3_FREE_THROUGHPUT_MBPS)
            cost += extra * self.gp3_throughput_mbps_month
        elif volume_type in ("io1", "io2"):
            cost += (iops or 0) * self.io_iops_month
        return cost

    def instance_month(self, instance_type: str) -> float | None:
        """Monthly on-demand cost of an instance type, or None when it is not in the table."""
        hourly = self.instance_hour.get(instance_type)
        return None if hourly is None else hourly * HOURS_PER_MONTH

    def address_month(self) -> float:
        """Monthly cost of one Elastic IP (AWS bills every public IPv4 address hourly)."""
        return self.public_ipv4_hour * HOURS_PER_MONTH

    def snapshot_month(self, size_gb: int) -> float:
        """Upper bound of a snapshot's monthly cost: snapshots store changed blocks only,
        so the real figure is at most the volume's size times the price."""
        return self.snapshot_gb_month * size_gb


def gp2_performance(size_gb: int) -> tuple[int, int]:
    """The baseline IOPS and throughput (MB/s) a gp2 volume of this size delivers.

    gp2 gives 3 IOPS per GiB (at least 100, at most 16,000) and up to 250 MB/s for
    volumes over 170 GiB (128 MB/s below). A gp3 replacement is given at least these,
    so that the migration never makes the volume slower.
    """
    iops = max(100, min(16000, 3 * size_gb))
    throughput = 250 if size_gb > 170 else 128
    return iops, throughput
