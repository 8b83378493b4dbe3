data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

# Used by ECS itself: pull the image, write logs, read the secrets into the environment.
resource "aws_iam_role" "execution" {
  name               = "${var.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "read_secrets" {
  statement {
    actions = ["secretsmanager:GetSecretValue"]
    resources = [
      aws_secretsmanager_secret.app.arn,
      aws_secretsmanager_secret.database_url.arn,
      aws_secretsmanager_secret.redis_url.arn,
    ]
  }
}

resource "aws_iam_role_policy" "execution_secrets" {
  name   = "read-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.read_secrets.json
}

# The processes' own identity. It assumes the read-only status role
# (`agentbot-aws-status`) in this account and in member accounts, and (ecs.tf) lets
# a busy worker hold its own task's scale-in protection.
resource "aws_iam_role" "task" {
  name               = "${var.name}-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy" "task_assume_status" {
  name   = "assume-aws-status"
  role   = aws_iam_role.task.id
  policy = file("${path.module}/../iam/aws-status-assume-role.json")
}

# This account's role for `/agent aws status`, costs and savings (same module as member
# accounts): read-only unless `aws_actions` lets approved savings actions change EC2 here.
module "aws_status_role" {
  source                 = "./modules/aws-status-role"
  trusted_principal_arns = [aws_iam_role.task.arn]
  external_id            = var.status_external_id
  actions                = var.aws_actions
}
