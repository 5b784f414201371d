variable "name" {
  description = "The replication group's id and the prefix of everything made for it."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,38}[a-z0-9]$", var.name))
    error_message = "Use 2 to 40 lower case letters, digits and hyphens, starting with a letter and not ending with a hyphen."
  }
}

variable "vpc_id" {
  description = "The VPC of the replication group."
  type        = string
}

variable "subnet_ids" {
  description = "The private subnets of the nodes, in at least two zones."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "Multi-AZ needs subnets in at least two availability zones."
  }
}

variable "allowed_security_group_ids" {
  description = "The security groups allowed to connect (the EKS cluster's)."
  type        = list(string)

  validation {
    condition     = length(var.allowed_security_group_ids) > 0
    error_message = "Name at least one security group, or nothing can connect."
  }
}

variable "engine_version" {
  description = "The Redis engine version."
  type        = string
  default     = "7.1"

  validation {
    condition     = can(regex("^[67]\\.[0-9]+$", var.engine_version))
    error_message = "Give a Redis 6 or 7 version as major.minor."
  }
}

variable "node_type" {
  description = "The node type of the primary and the replicas."
  type        = string
  default     = "cache.r7g.large"

  validation {
    condition     = startswith(var.node_type, "cache.")
    error_message = "Give an ElastiCache node type, such as cache.r7g.large."
  }
}

variable "replica_count" {
  description = "How many replicas follow the primary, each in another zone when it can; failover needs at least one."
  type        = number
  default     = 2

  validation {
    condition     = var.replica_count >= 1 && var.replica_count <= 5 && floor(var.replica_count) == var.replica_count
    error_message = "Use a whole number between 1 and 5."
  }
}

variable "snapshot_retention_days" {
  description = "How many daily snapshots are kept."
  type        = number
  default     = 7

  validation {
    condition     = var.snapshot_retention_days >= 1 && var.snapshot_retention_days <= 35
    error_message = "Keep between 1 and 35 snapshots."
  }
}

variable "log_retention_days" {
  description = "How long the slow log is kept, in days."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "Use a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653)."
  }
}

variable "secret_prefix" {
  description = "The prefix of the secret's name in Secrets Manager (`<prefix>/redis`)."
  type        = string
}

variable "secrets_kms_key_arn" {
  description = "The KMS key the secret is encrypted with."
  type        = string

  validation {
    condition     = startswith(var.secrets_kms_key_arn, "arn:")
    error_message = "Give the key's ARN."
  }
}

variable "secret_recovery_window_in_days" {
  description = "How long a deleted secret can still be restored, in days (0 deletes at once)."
  type        = number
  default     = 30

  validation {
    condition     = var.secret_recovery_window_in_days == 0 || (var.secret_recovery_window_in_days >= 7 && var.secret_recovery_window_in_days <= 30)
    error_message = "Use 0, or between 7 and 30 days."
  }
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
