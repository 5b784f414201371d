variable "name" {
  description = "The RDS instance's identifier and the prefix of everything made for it."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,50}$", var.name))
    error_message = "Use 2 to 51 lower case letters, digits and hyphens, starting with a letter."
  }
}

variable "services" {
  description = "The services that keep their state in PostgreSQL: each gets a database and a role named after it (hyphens become underscores)."
  type        = set(string)

  validation {
    condition     = alltrue([for service in var.services : can(regex("^[a-z][a-z0-9-]{0,39}$", service))])
    error_message = "Service names are lower case letters, digits and hyphens, starting with a letter (as apps/services.toml has them)."
  }
}

variable "vpc_id" {
  description = "The VPC of the instance."
  type        = string
}

variable "subnet_ids" {
  description = "The private subnets of the instance, in at least two zones."
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
  description = "The PostgreSQL version (major.minor); the parameter group's family follows its major version."
  type        = string
  default     = "16.8"

  validation {
    condition     = can(regex("^1[4-9]\\.[0-9]+$", var.engine_version))
    error_message = "Give a PostgreSQL version of 14 or later, as major.minor."
  }
}

variable "instance_class" {
  description = "The primary's instance class."
  type        = string
  default     = "db.r6g.large"

  validation {
    condition     = startswith(var.instance_class, "db.")
    error_message = "Give an RDS instance class, such as db.r6g.large."
  }
}

variable "allocated_storage_gib" {
  description = "The storage allocated at creation, in GiB."
  type        = number
  default     = 100

  validation {
    condition     = var.allocated_storage_gib >= 20 && var.allocated_storage_gib <= 65536
    error_message = "Use between 20 and 65536 GiB."
  }
}

variable "max_allocated_storage_gib" {
  description = "The most storage autoscaling may grow to, in GiB."
  type        = number
  default     = 1000

  validation {
    condition     = var.max_allocated_storage_gib <= 65536
    error_message = "Use at most 65536 GiB."
  }
}

variable "backup_retention_days" {
  description = "How many days of automated backups (point-in-time recovery) are kept."
  type        = number
  default     = 14

  validation {
    condition     = var.backup_retention_days >= 7 && var.backup_retention_days <= 35
    error_message = "Keep between 7 and 35 days of backups."
  }
}

variable "read_replica_count" {
  description = "How many read replicas follow the primary."
  type        = number
  default     = 0

  validation {
    condition     = var.read_replica_count >= 0 && var.read_replica_count <= 5 && floor(var.read_replica_count) == var.read_replica_count
    error_message = "Use a whole number between 0 and 5."
  }
}

variable "read_replica_instance_class" {
  description = "The replicas' instance class; the primary's when null."
  type        = string
  default     = null
}

variable "log_min_duration_statement_ms" {
  description = "Statements slower than this are logged, in milliseconds."
  type        = number
  default     = 500

  validation {
    condition     = var.log_min_duration_statement_ms >= 0
    error_message = "Use zero or more milliseconds."
  }
}

variable "secret_prefix" {
  description = "The prefix of the secrets' names in Secrets Manager (`<prefix>/postgres/<service>`)."
  type        = string
}

variable "secrets_kms_key_arn" {
  description = "The KMS key the secrets are encrypted with."
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

variable "kubernetes_namespace" {
  description = "The namespace the database Job runs in."
  type        = string
}

variable "bootstrap_image" {
  description = "The image of the database Job: any with psql and /bin/sh, running as uid 70 (the official postgres Alpine images)."
  type        = string
  default     = "postgres:16.8-alpine"
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
