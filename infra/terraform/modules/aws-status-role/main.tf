# The read-only role Agentbot assumes to report on an account's health. Its permissions
# are the repository's infra/iam/aws-status-readonly.json, read as is.

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
  description          = "Agentbot: read-only inventory and health"
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
