# Apply once per member account, with credentials for that account:
#
#   cd infra/terraform/member-account
#   terraform init
#   terraform apply -var agentbot_task_role_arn=<task_role_arn output of the main stack>
#
# It creates only the read-only role the bot assumes; nothing else.

terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.60"
    }
  }
}

provider "aws" {
  region = var.region
}

variable "region" {
  description = "Any region: IAM is global."
  type        = string
  default     = "us-east-1"
}

variable "agentbot_task_role_arn" {
  description = "The main stack's task_role_arn output: the identity Agentbot runs as."
  type        = string
}

variable "external_id" {
  description = "Must match status_external_id in the main stack (empty: none)."
  type        = string
  default     = ""
}

module "aws_status_role" {
  source                 = "../modules/aws-status-role"
  trusted_principal_arns = [var.agentbot_task_role_arn]
  external_id            = var.external_id
}

output "role_arn" {
  description = "Add this account to Agentbot's AWS configuration with this role."
  value       = module.aws_status_role.role_arn
}
