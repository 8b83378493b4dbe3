# One image, three ECS services: the bot (behind the load balancer) and the scheduler
# (exactly one) on Fargate; the workers (autoscaled) on their own EC2 instances
# (worker-instances.tf), where the agent sandbox can start.

locals {
  port = 3000

  # Keys of the `app` secret, each becoming an environment variable of the same name.
  app_secret_keys = [
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "GITHUB_TOKEN",
    "GITHUB_WEBHOOK_SECRET",
    "ANTHROPIC_API_KEY",
  ]

  environment = [
    { name = "PORT", value = tostring(local.port) },
    { name = "LOG_LEVEL", value = var.log_level },
    { name = "AWS_REGION", value = var.region },
    { name = "AGENTBOT_CONFIG", value = "/tmp/agentbot.toml" },
    { name = "AGENTBOT_CONFIG_TOML", value = var.agentbot_config },
  ]

  secrets = concat(
    [
      { name = "DATABASE_URL", valueFrom = aws_secretsmanager_secret.database_url.arn },
      { name = "REDIS_URL", valueFrom = aws_secretsmanager_secret.redis_url.arn },
    ],
    [for key in local.app_secret_keys : { name = key, valueFrom = "${aws_secretsmanager_secret.app.arn}:${key}::" }],
  )

  # Fargate has no config maps: the entry point writes the configuration file from
  # AGENTBOT_CONFIG_TOML into /tmp, then runs `agentbot <command>`.
  entry_point = [
    "tini", "--", "sh", "-c",
    "printf '%s' \"$AGENTBOT_CONFIG_TOML\" > \"$AGENTBOT_CONFIG\" && exec agentbot \"$@\"",
    "agentbot",
  ]

  # The root filesystem is read-only; these are the writable places.
  scratch_mounts = [
    { sourceVolume = "tmp", containerPath = "/tmp", readOnly = false },
    { sourceVolume = "home", containerPath = "/home/agentbot", readOnly = false },
  ]

  redis_ping = [
    "CMD", "python", "-c",
    "import os, redis; redis.Redis.from_url(os.environ['REDIS_URL'], socket_timeout=3).ping()",
  ]
}

resource "aws_ecs_cluster" "this" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

# -- bot -------------------------------------------------------------------------------

resource "aws_ecs_task_definition" "bot" {
  family                   = "${var.name}-bot"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 512
  memory                   = 1024
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  volume {
    name = "tmp"
  }

  volume {
    name = "home"
  }

  container_definitions = jsonencode([
    {
      # Runs to completion before the bot starts: migrations once per deployment.
      name                   = "migrate"
      image                  = var.image
      essential              = false
      entryPoint             = local.entry_point
      command                = ["migrate"]
      environment            = local.environment
      secrets                = local.secrets
      readonlyRootFilesystem = true
      mountPoints            = local.scratch_mounts
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.this["bot"].name
          awslogs-region        = var.region
          awslogs-stream-prefix = "migrate"
        }
      }
    },
    {
      name                   = "bot"
      image                  = var.image
      essential              = true
      entryPoint             = local.entry_point
      command                = ["serve"]
      environment            = local.environment
      secrets                = local.secrets
      readonlyRootFilesystem = true
      mountPoints            = local.scratch_mounts
      portMappings           = [{ containerPort = local.port, protocol = "tcp" }]
      dependsOn              = [{ containerName = "migrate", condition = "SUCCESS" }]
      healthCheck = {
        command = [
          "CMD", "python", "-c",
          "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=4)",
        ]
        interval    = 30
        timeout     = 5
        retries     = 3
        startPeriod = 30
      }
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.this["bot"].name
          awslogs-region        = var.region
          awslogs-stream-prefix = "bot"
        }
      }
    },
  ])
}

resource "aws_ecs_service" "bot" {
  name                              = "bot"
  cluster                           = aws_ecs_cluster.this.id
  task_definition                   = aws_ecs_task_definition.bot.arn
  desired_count                     = var.bot_count
  launch_type                       = "FARGATE"
  health_check_grace_period_seconds = 60

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.bot.arn
    container_name   = "bot"
    container_port   = local.port
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  depends_on = [aws_lb_listener.https]
}

# -- workers ---------------------------------------------------------------------------

# awsvpc, as on Fargate: each worker keeps an interface of its own in the `tasks`
# security group, which PostgreSQL and Redis admit, and cannot reach the instance's
# metadata service (ECS_AWSVPC_BLOCK_IMDS). Without ENI trunking an instance holds one
# task fewer than its interfaces (two on the default m6i.large); at the default sizes
# only one worker fits an instance anyway. Bridge mode would put every worker behind
# the instance's security group and let them reach the instance role's credentials.
resource "aws_ecs_task_definition" "worker" {
  family                   = "${var.name}-worker"
  requires_compatibilities = ["EC2"]
  network_mode             = "awsvpc"
  cpu                      = var.worker_cpu
  memory                   = var.worker_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  # Docker volumes on the instance's disk (worker_instance_volume_size), one set per
  # task: Docker fills a new volume from the image, ownership included, so the image's
  # user can write its VOLUME paths. Git mirrors, worktrees and the repos' tests live
  # in `workspaces`.
  dynamic "volume" {
    for_each = toset(["tmp", "home", "workspaces"])
    content {
      name = volume.value
      docker_volume_configuration {
        scope  = "task"
        driver = "local"
      }
    }
  }

  container_definitions = jsonencode([
    {
      name                   = "worker"
      image                  = var.image
      essential              = true
      # Privileged is the only way an ECS task gives bubblewrap the clone/unshare
      # syscalls (no seccomp filter) and an unmasked /proc to mount; ECS accepts
      # neither seccomp=unconfined nor systempaths=unconfined. It is acceptable here
      # because nothing but workers runs on these instances (worker-instances.tf), the
      # process runs as the image's non-root user, so it holds no capabilities, and
      # no-new-privileges keeps it from gaining any through a setuid binary; bubblewrap
      # drops every capability inside the sandbox where the agent and the repos' tests
      # run.
      privileged             = true
      user                   = "10001:10001"
      dockerSecurityOptions  = ["no-new-privileges"]
      entryPoint             = local.entry_point
      command                = ["worker"]
      environment            = local.environment
      secrets                = local.secrets
      readonlyRootFilesystem = true
      mountPoints = concat(local.scratch_mounts, [
        { sourceVolume = "workspaces", containerPath = "/var/lib/agentbot", readOnly = false },
      ])
      # As long as on Fargate. RQ's warm shutdown finishes the current job if it can; a job
      # still running then is killed, and the reconciler fails its task with a message.
      stopTimeout = 120
      healthCheck = {
        command     = local.redis_ping
        interval    = 30
        timeout     = 5
        retries     = 3
        startPeriod = 30
      }
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.this["worker"].name
          awslogs-region        = var.region
          awslogs-stream-prefix = "worker"
        }
      }
    },
  ])
}

resource "aws_ecs_service" "worker" {
  name            = "worker"
  cluster         = aws_ecs_cluster.this.id
  task_definition = aws_ecs_task_definition.worker.arn
  desired_count   = var.worker_min_count

  # Only this service uses the worker instances' capacity provider.
  capacity_provider_strategy {
    capacity_provider = aws_ecs_capacity_provider.worker.name
    weight            = 1
  }

  # Fill an instance before using another, so managed scaling can empty and remove one.
  ordered_placement_strategy {
    type  = "binpack"
    field = "memory"
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  # The autoscaler owns the count after creation.
  lifecycle {
    ignore_changes = [desired_count]
  }

  depends_on = [aws_ecs_cluster_capacity_providers.this]
}

resource "aws_appautoscaling_target" "worker" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.worker.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.worker_min_count
  max_capacity       = var.worker_max_count
}

# Agents and test suites are CPU-bound, so busy workers show as CPU and more are added.
# This scales the service; the instances follow through the capacity provider's
# managed scaling (worker-instances.tf). (On Kubernetes the workers scale on the
# queues' lengths instead; see infra/k8s/worker.yaml.)
#
# Scale-in is on because busy workers protect themselves. ECS picks the task a scale-in
# stops without regard to what it is doing, and a stopped task gets only stopTimeout
# (120 s) to finish while an execute job may run for an hour. So the worker sets its
# task's scale-in protection (through the ECS agent's endpoint, ECS_AGENT_URI) for the
# length of each job, the job's timeout plus a margin, and releases it when the job is
# over: scale-in and deployments then stop only idle workers. Should the endpoint be
# unreachable the job still runs, unprotected, and the worker logs a warning.
# The instance under a busy worker stays too: the capacity provider's managed termination
# protection keeps an instance from the group's scale-in while any worker runs on it.
resource "aws_appautoscaling_policy" "worker_cpu" {
  name               = "${var.name}-worker-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.worker.service_namespace
  resource_id        = aws_appautoscaling_target.worker.resource_id
  scalable_dimension = aws_appautoscaling_target.worker.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = 60
    disable_scale_in   = false
    scale_out_cooldown = 60
    scale_in_cooldown  = var.worker_scale_in_cooldown

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

# The ECS agent sets a task's protection with the task role's credentials; only tasks
# of this cluster (the bot and cron share the role but never ask).
data "aws_iam_policy_document" "task_protection" {
  statement {
    actions   = ["ecs:GetTaskProtection", "ecs:UpdateTaskProtection"]
    resources = ["${replace(aws_ecs_cluster.this.arn, ":cluster/", ":task/")}/*"]
  }
}

resource "aws_iam_role_policy" "task_protection" {
  name   = "task-scale-in-protection"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task_protection.json
}

# -- cron ------------------------------------------------------------------------------

resource "aws_ecs_task_definition" "cron" {
  family                   = "${var.name}-cron"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 256
  memory                   = 512
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  volume {
    name = "tmp"
  }

  volume {
    name = "home"
  }

  container_definitions = jsonencode([
    {
      name                   = "cron"
      image                  = var.image
      essential              = true
      entryPoint             = local.entry_point
      command                = ["cron"]
      environment            = local.environment
      secrets                = local.secrets
      readonlyRootFilesystem = true
      mountPoints            = local.scratch_mounts
      healthCheck = {
        command     = local.redis_ping
        interval    = 30
        timeout     = 5
        retries     = 3
        startPeriod = 30
      }
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.this["cron"].name
          awslogs-region        = var.region
          awslogs-stream-prefix = "cron"
        }
      }
    },
  ])
}

# Exactly one scheduler, never two during a deployment: the old task stops first.
resource "aws_ecs_service" "cron" {
  name                               = "cron"
  cluster                            = aws_ecs_cluster.this.id
  task_definition                    = aws_ecs_task_definition.cron.arn
  desired_count                      = 1
  launch_type                        = "FARGATE"
  deployment_minimum_healthy_percent = 0
  deployment_maximum_percent         = 100

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }
}
