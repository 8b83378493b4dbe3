# Apply once per member account, with credentials for that account:
#
#   cd infra/terraform/member-account
#   terraform init
#   terraform apply -var agentbot_task_role_arn=<task_role_arn output of the main stack>
#
# It creates only the role the bot assumes; nothing else. The role reads inventory,
# health and costs; add `-var actions=true` only where approved savings actions
# (stop, snapshot-and-delete, release, gp2 to gp3) may change this account.

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

variable "cost_read" {
  description = "Let the bot read Cost Explorer and scan this account for savings."
  type        = bool
  default     = true
}

variable "actions" {
  description = "Let approved savings actions change EC2 resources in this account."
  type        = bool
  default     = false
}

module "aws_status_role" {
  source                 = "../modules/aws-status-role"
  trusted_principal_arns = [var.agentbot_task_role_arn]
  external_id            = var.external_id
  cost_read              = var.cost_read
  actions                = var.actions
}

output "role_arn" {
  description = "Add this account to Agentbot's AWS configuration with this role."
  value       = module.aws_status_role.role_arn
}

output "policies" {
  description = "The inline policies the role carries."
  value       = module.aws_status_role.policies
}
