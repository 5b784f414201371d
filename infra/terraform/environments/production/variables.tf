variable "region" {
  description = "The AWS region everything is made in."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "Give an AWS region, such as eu-west-1."
  }
}

variable "environment" {
  description = "The environment's name: part of every resource's name (emporium-<environment>)."
  type        = string
  default     = "production"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,14}$", var.environment))
    error_message = "Use 2 to 15 lower case letters and digits, starting with a letter."
  }
}

variable "tags" {
  description = "Tags for every resource, besides Project, Environment and ManagedBy."
  type        = map(string)
  default     = {}
}

# Network.

variable "vpc_cidr_block" {
  description = "The VPC's IPv4 range."
  type        = string
  default     = "10.20.0.0/16"
}

variable "availability_zones" {
  description = "The availability zones to spread over, by name: three in the region, such as eu-west-1a, eu-west-1b and eu-west-1c."
  type        = list(string)
}

variable "single_nat_gateway" {
  description = "One NAT gateway for every zone instead of one per zone."
  type        = bool
  default     = false
}

# Kubernetes.

variable "kubernetes_version" {
  description = "The EKS Kubernetes version."
  type        = string
  default     = "1.33"
}

variable "eks_endpoint_public_access" {
  description = "Whether the Kubernetes API is reachable from outside the VPC (from eks_endpoint_public_access_cidrs only)."
  type        = bool
  default     = false
}

variable "eks_endpoint_public_access_cidrs" {
  description = "The ranges that may reach the public API endpoint, when it is on."
  type        = list(string)
  default     = []
}

variable "eks_admin_role_arns" {
  description = "IAM roles given cluster admin, besides the identity that creates the cluster."
  type        = list(string)
  default     = []
}

variable "node_groups" {
  description = "Managed node groups by name."
  type = map(object({
    instance_types = list(string)
    capacity_type  = optional(string, "ON_DEMAND")
    min_size       = number
    desired_size   = number
    max_size       = number
    labels         = optional(map(string), {})
  }))
  default = {
    general = {
      instance_types = ["m7i.large"]
      min_size       = 3
      desired_size   = 3
      max_size       = 9
    }
  }
}

variable "namespace" {
  description = "The Kubernetes namespace of NATS and the platform."
  type        = string
  default     = "emporium"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,62}$", var.namespace))
    error_message = "Give a Kubernetes namespace name."
  }
}

# PostgreSQL.

variable "postgres_engine_version" {
  description = "The PostgreSQL version."
  type        = string
  default     = "16.8"
}

variable "postgres_instance_class" {
  description = "The primary's instance class."
  type        = string
  default     = "db.r6g.large"
}

variable "postgres_allocated_storage_gib" {
  description = "The storage allocated at creation, in GiB."
  type        = number
  default     = 100
}

variable "postgres_max_allocated_storage_gib" {
  description = "The most storage autoscaling may grow to, in GiB."
  type        = number
  default     = 1000
}

variable "postgres_read_replica_count" {
  description = "How many read replicas follow the primary."
  type        = number
  default     = 0
}

variable "postgres_read_replica_instance_class" {
  description = "The replicas' instance class; the primary's when null."
  type        = string
  default     = null
}

# Redis.

variable "redis_node_type" {
  description = "The ElastiCache node type."
  type        = string
  default     = "cache.r7g.large"
}

variable "redis_replica_count" {
  description = "How many Redis replicas follow the primary."
  type        = number
  default     = 2
}

# NATS.

variable "nats_credentials_dir" {
  description = "The directory `nats-credentials --out` wrote (outside the repository); its seeds go to Secrets Manager."
  type        = string
}

variable "nats_cluster_size" {
  description = "How many NATS servers form the cluster: 3, 5 or 7."
  type        = number
  default     = 3
}

variable "nats_jetstream_volume_size" {
  description = "Each NATS server's JetStream volume, such as 20Gi."
  type        = string
  default     = "20Gi"
}

variable "nats_tls_secret_name" {
  description = "A kubernetes.io/tls Secret for NATS client connections; null for plain connections inside the cluster."
  type        = string
  default     = null
}

variable "nats_tls_ca_secret" {
  description = "With NATS TLS: a Secret with `ca.crt`, the authority the processes verify the servers' certificate against."
  type        = string
  default     = ""
}

# The platform.

variable "image" {
  description = "The platform's image: repository, release tag, pull policy."
  type = object({
    repository  = string
    tag         = string
    pull_policy = optional(string, "IfNotPresent")
  })
}

variable "gateway_replicas" {
  description = "How many gateway pods run."
  type        = number
  default     = 3
}

variable "ingress" {
  description = "The gateway's Ingress: controller class, host name and the TLS Secret of its certificate."
  type = object({
    enabled    = bool
    class_name = optional(string, "nginx")
    host       = string
    tls_secret = optional(string, "")
  })
}

variable "otel_endpoint" {
  description = "The OTLP endpoint traces are sent to; empty for none."
  type        = string
  default     = ""
}

variable "service_monitor" {
  description = "Whether the chart makes Prometheus Operator ServiceMonitors (the CRD must exist)."
  type        = bool
  default     = false
}

variable "chart_extra_values" {
  description = "More values files for the platform's chart, as YAML strings (per-service replicas, resources, autoscaling)."
  type        = list(string)
  default     = []
}
