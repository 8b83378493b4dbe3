output "url" {
  description = "Base URL for the Slack app's Request URLs (append /slack/events)."
  value       = "https://${aws_lb.this.dns_name}"
}

output "task_role_arn" {
  description = "The identity Agentbot runs as; member accounts trust it (member-account/)."
  value       = aws_iam_role.task.arn
}

output "aws_status_role_arn" {
  description = "This account's read-only role for the status reports."
  value       = module.aws_status_role.role_arn
}

output "app_secret_arn" {
  description = "Put the Slack, GitHub and model API credentials here (see secrets.tf)."
  value       = aws_secretsmanager_secret.app.arn
}

output "log_groups" {
  description = "CloudWatch log groups of the bot, the workers and the scheduler."
  value       = { for kind, group in aws_cloudwatch_log_group.this : kind => group.name }
}
