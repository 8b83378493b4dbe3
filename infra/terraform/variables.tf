variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "us-east-1"
}

variable "name" {
  description = "Prefix for every resource name."
  type        = string
  default     = "agentbot"
}

variable "tags" {
  description = "Extra tags on every resource."
  type        = map(string)
  default     = {}
}

variable "vpc_id" {
  description = "The VPC to run in."
  type        = string
}

variable "public_subnet_ids" {
  description = "Subnets for the load balancer (at least two availability zones)."
  type        = list(string)
}

variable "private_subnet_ids" {
  description = "Subnets with outbound internet access (NAT) for the tasks, RDS and Redis."
  type        = list(string)
}

variable "certificate_arn" {
  description = "ACM certificate for the load balancer's HTTPS listener."
  type        = string
}

variable "allowed_ingress_cidrs" {
  description = "Who may reach the load balancer (Slack and your webhook senders)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "image" {
  description = "The Agentbot image (built from the repository's Dockerfile), e.g. an ECR URI with a tag."
  type        = string
}

variable "bot_count" {
  description = "Tasks serving Slack and webhooks."
  type        = number
  default     = 2
}

variable "worker_min_count" {
  description = "Fewest worker tasks."
  type        = number
  default     = 1
}

variable "worker_max_count" {
  description = "Most worker tasks."
  type        = number
  default     = 8
}

variable "worker_scale_in_cooldown" {
  description = "Seconds after a scale-in before the autoscaler removes another idle worker."
  type        = number
  default     = 300
}

variable "worker_cpu" {
  description = "CPU units (1024 a vCPU) reserved for each worker task (the agent and the repos' tests run there)."
  type        = number
  default     = 2048
}

variable "worker_memory" {
  description = "Memory (MiB) reserved for each worker task."
  type        = number
  default     = 4096
}

variable "worker_instance_type" {
  description = "EC2 instance type of the worker instances (x86_64). The default holds one worker at the default worker_cpu and worker_memory; without ENI trunking an instance holds at most one worker fewer than its network interfaces."
  type        = string
  default     = "m6i.large"
}

variable "worker_instance_min_count" {
  description = "Fewest worker EC2 instances; ECS managed scaling sets the count between this and the most."
  type        = number
  default     = 1
}

variable "worker_instance_max_count" {
  description = "Most worker EC2 instances; at the defaults one worker runs per instance, so keep it at least worker_max_count."
  type        = number
  default     = 8
}

variable "worker_instance_volume_size" {
  description = "Root disk (GiB) of each worker instance: the image, and the workers' git mirrors, worktrees and test runs."
  type        = number
  default     = 100
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.small"
}

variable "db_multi_az" {
  description = "Run PostgreSQL in two availability zones."
  type        = bool
  default     = true
}

variable "redis_node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.t4g.small"
}

variable "log_retention_days" {
  description = "How long CloudWatch keeps the JSON logs."
  type        = number
  default     = 30
}

variable "log_level" {
  description = "LOG_LEVEL for every process."
  type        = string
  default     = "INFO"
}

variable "agentbot_config" {
  description = "Contents of the AGENTBOT_CONFIG TOML file (repos, approvers, agent); no secrets."
  type        = string
}

variable "status_external_id" {
  description = "ExternalId member accounts require before the bot may assume their read-only role (empty: none)."
  type        = string
  default     = ""
}

variable "aws_actions" {
  description = "Let approved savings actions (stop, snapshot-and-delete, release, gp2 to gp3) change EC2 resources in this account: attaches aws-actions.json to its agentbot-aws-status role. The bot also needs [cost.actions] enabled = true."
  type        = bool
  default     = false
}
