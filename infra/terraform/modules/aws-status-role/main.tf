# The role Agentbot assumes in an account. Its permissions are the repository's
# infra/iam policies, read as is:
#
# - aws-status-readonly.json: inventory and health for `/agent aws status` (always);
# - aws-cost-read.json: Cost Explorer's daily costs and the savings scan's Describe
#   and CPU metric reads (`cost_read`, on by default; all read-only);
# - aws-actions.json: the changes savings actions make - stop an instance, snapshot
#   then delete a volume, release an address, migrate gp2 to gp3 (`actions`, off by
#   default: without it every action fails at its dry run and nothing changes).

terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

locals {
  external_id_condition = var.external_id == "" ? {} : {
    StringEquals = { "sts:ExternalId" = var.external_id }
  }
}

resource "aws_iam_role" "this" {
  name                 = var.role_name
  description          = var.actions ? "Agentbot: inventory, health, costs and approved savings actions" : "Agentbot: read-only inventory, health and costs"
  max_session_duration = 3600
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [merge(
      {
        Sid       = "AgentbotAssumes"
        Effect    = "Allow"
        Action    = "sts:AssumeRole"
        Principal = { AWS = var.trusted_principal_arns }
      },
      length(local.external_id_condition) > 0 ? { Condition = local.external_id_condition } : {}
    )]
  })
}

resource "aws_iam_role_policy" "read_only" {
  name   = "aws-status-readonly"
  role   = aws_iam_role.this.id
  policy = file("${path.module}/../../../iam/aws-status-readonly.json")
}

resource "aws_iam_role_policy" "cost_read" {
  count  = var.cost_read ? 1 : 0
  name   = "aws-cost-read"
  role   = aws_iam_role.this.id
  policy = file("${path.module}/../../../iam/aws-cost-read.json")
}

resource "aws_iam_role_policy" "actions" {
  count  = var.actions ? 1 : 0
  name   = "aws-actions"
  role   = aws_iam_role.this.id
  policy = file("${path.module}/../../../iam/aws-actions.json")

  lifecycle {
    # An action checks its resource and waits for its snapshot with reads that only
    # aws-cost-read.json grants: without them a snapshot-then-delete would stop
    # half-way, leaving the snapshot and the volume.
    precondition {
      condition     = var.cost_read
      error_message = "actions = true needs cost_read = true: actions read what they change."
    }
  }
}
