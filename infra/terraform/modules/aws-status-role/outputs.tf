output "role_arn" {
  description = "ARN to list under the account in Agentbot's AWS configuration."
  value       = aws_iam_role.this.arn
}

output "policies" {
  description = "Names of the inline policies on the role."
  value = concat(
    [aws_iam_role_policy.read_only.name],
    aws_iam_role_policy.cost_read[*].name,
    aws_iam_role_policy.actions[*].name,
  )
}
