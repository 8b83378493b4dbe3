variable "role_name" {
  description = "Name of the role; the bot's assume-role policy expects agentbot-aws-status."
  type        = string
  default     = "agentbot-aws-status"
}

variable "trusted_principal_arns" {
  description = "Who may assume the role: the ARN of Agentbot's ECS task role (or IRSA role)."
  type        = list(string)
}

variable "external_id" {
  description = "ExternalId the caller must present (empty: none required)."
  type        = string
  default     = ""
}

variable "cost_read" {
  description = "Attach aws-cost-read.json: Cost Explorer daily costs and the savings scan's reads."
  type        = bool
  default     = true
}

variable "actions" {
  description = "Attach aws-actions.json: the EC2 changes approved savings actions make. Off unless opted in."
  type        = bool
  default     = false
}
