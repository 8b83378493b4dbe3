# The workers' own EC2 container instances. The agent sandbox (bubblewrap) needs user
# namespaces, the clone/unshare syscalls and an unmasked /proc, which Fargate never
# gives and an ECS task definition gives only with `privileged = true` (ECS accepts no
# seccomp=unconfined and no systempaths=unconfined). Privileged containers are run on
# these instances alone: they join the cluster through a capacity provider that only the
# worker service uses, while the cluster's default strategy, the bot and cron stay on
# Fargate. See the worker task definition (ecs.tf) for why privileged is acceptable.

# AWS's public parameter for the current ECS-optimized Amazon Linux 2023 image; an
# apply after AWS publishes a new image updates the launch template, and instances
# launched from then on run it.
data "aws_ssm_parameter" "ecs_ami" {
  name = "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"
}

locals {
  # Joins the cluster. IAM roles for tasks (the task role: status role, scale-in
  # protection) are on; awsvpc tasks may not reach the instance metadata service, so
  # no task can borrow the instance role. The kernel's user-namespace limit is set
  # explicitly because bubblewrap, running as the image's non-root user, needs it.
  worker_instance_user_data = <<-EOT
    #!/bin/bash
    set -euo pipefail
    cat >> /etc/ecs/ecs.config <<'CONFIG'
    ECS_CLUSTER=${aws_ecs_cluster.this.name}
    ECS_ENABLE_TASK_IAM_ROLE=true
    ECS_AWSVPC_BLOCK_IMDS=true
    CONFIG
    echo 'user.max_user_namespaces = 15000' > /etc/sysctl.d/90-agentbot-sandbox.conf
    sysctl --system
  EOT
}

resource "aws_launch_template" "worker" {
  name_prefix            = "${var.name}-worker-"
  image_id               = data.aws_ssm_parameter.ecs_ami.insecure_value
  instance_type          = var.worker_instance_type
  vpc_security_group_ids = [aws_security_group.worker_instances.id]
  user_data              = base64encode(local.worker_instance_user_data)

  iam_instance_profile {
    arn = aws_iam_instance_profile.worker_instance.arn
  }

  # IMDSv2 only, one hop: containers behind a bridge cannot reach it either.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  # Images, and the workers' Docker volumes: git mirrors, worktrees, the repos' tests.
  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size           = var.worker_instance_volume_size
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags          = { Name = "${var.name}-worker" }
  }
}

resource "aws_autoscaling_group" "worker" {
  name_prefix         = "${var.name}-worker-"
  vpc_zone_identifier = var.private_subnet_ids
  min_size            = var.worker_instance_min_count
  max_size            = var.worker_instance_max_count
  # Managed termination protection: ECS lifts an instance's protection only when no
  # worker runs on it, so the group's scale-in never stops a busy worker's instance.
  protect_from_scale_in = true

  launch_template {
    id      = aws_launch_template.worker.id
    version = aws_launch_template.worker.latest_version
  }

  # Required by ECS managed scaling, which sets the desired capacity from now on.
  tag {
    key                 = "AmazonECSManaged"
    value               = "true"
    propagate_at_launch = true
  }

  lifecycle {
    ignore_changes = [desired_capacity]
  }
}

# Service autoscaling (ecs.tf) decides how many workers run; managed scaling follows:
# workers that find no room wait in PROVISIONING, the capacity provider's reservation
# rises above its target and the group adds instances; when workers are removed, the
# instances left empty are drained and terminated.
resource "aws_ecs_capacity_provider" "worker" {
  name = "${var.name}-worker"

  auto_scaling_group_provider {
    auto_scaling_group_arn         = aws_autoscaling_group.worker.arn
    managed_termination_protection = "ENABLED"
    managed_draining               = "ENABLED"

    managed_scaling {
      status                    = "ENABLED"
      target_capacity           = 100
      minimum_scaling_step_size = 1
      maximum_scaling_step_size = 4
    }
  }
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE", aws_ecs_capacity_provider.worker.name]

  # A task started without a strategy or launch type lands on Fargate, never on the
  # worker instances.
  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

# -- the instances' identity: the ECS agent's, and nothing else -------------------------

data "aws_iam_policy_document" "ec2_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "worker_instance" {
  name               = "${var.name}-worker-instance"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
}

# Register with the cluster, poll for tasks, pull from ECR, write the agent's logs. The
# workers' own permissions stay on the task role; their secrets and logs use the
# execution role.
resource "aws_iam_role_policy_attachment" "worker_instance" {
  role       = aws_iam_role.worker_instance.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"
}

resource "aws_iam_instance_profile" "worker_instance" {
  name = "${var.name}-worker-instance"
  role = aws_iam_role.worker_instance.name
}
