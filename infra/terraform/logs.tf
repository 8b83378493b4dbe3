# One log group per process kind; the lines are Agentbot's JSON logs (task id, user and
# job id on each), searchable with CloudWatch Logs Insights.
resource "aws_cloudwatch_log_group" "this" {
  for_each          = toset(["bot", "worker", "cron"])
  name              = "/${var.name}/${each.key}"
  retention_in_days = var.log_retention_days
}
