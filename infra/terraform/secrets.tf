# Secrets Manager: the bot's credentials, one JSON secret whose keys are the settings'
# environment names. Terraform creates it empty; put the values in out of band so they
# never enter the Terraform state:
#
#   aws secretsmanager put-secret-value --secret-id agentbot/app --secret-string \
#     '{"SLACK_BOT_TOKEN":"xoxb-…","SLACK_SIGNING_SECRET":"…","GITHUB_TOKEN":"…",
#       "GITHUB_WEBHOOK_SECRET":"…","ANTHROPIC_API_KEY":"…"}'

resource "aws_secretsmanager_secret" "app" {
  name                    = "${var.name}/app"
  description             = "Agentbot: Slack, GitHub and model API credentials"
  recovery_window_in_days = 7
}

# Connection strings built from the generated passwords.
resource "aws_secretsmanager_secret" "database_url" {
  name                    = "${var.name}/database-url"
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "database_url" {
  secret_id     = aws_secretsmanager_secret.database_url.id
  secret_string = "postgresql://agentbot:${random_password.db.result}@${aws_db_instance.this.address}:${aws_db_instance.this.port}/agentbot?sslmode=require"
}

resource "aws_secretsmanager_secret" "redis_url" {
  name                    = "${var.name}/redis-url"
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "redis_url" {
  secret_id     = aws_secretsmanager_secret.redis_url.id
  secret_string = "rediss://:${random_password.redis.result}@${aws_elasticache_replication_group.this.primary_endpoint_address}:6379/0"
}
