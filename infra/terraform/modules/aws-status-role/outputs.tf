output "role_arn" {
  description = "ARN to list under the account in Agentbot's AWS configuration."
  value       = aws_iam_role.this.arn
}
