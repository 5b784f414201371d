variable "namespace" {
  description = "The namespace the platform runs in (NATS runs there too)."
  type        = string
}

variable "release_name" {
  description = "The Helm release's name; the Secrets are named after it."
  type        = string
  default     = "emporium"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}$", var.release_name))
    error_message = "Use up to 31 lower case letters, digits and hyphens, starting with a letter."
  }
}

variable "chart_path" {
  description = "The platform's chart: infra/helm/emporium in this repository."
  type        = string
}

variable "services" {
  description = "The platform's services (the environment's generated local.services): name, store and admin port of each."
  type = map(object({
    name       = string
    store      = string
    admin_port = number
  }))

  validation {
    condition     = alltrue([for service in values(var.services) : contains(["postgres", "redis", "mongo"], service.store)])
    error_message = "A service's store is postgres, redis or mongo."
  }
}

variable "image" {
  description = "The platform's image (every binary in one): repository, tag, pull policy."
  type = object({
    repository  = string
    tag         = string
    pull_policy = optional(string, "IfNotPresent")
  })

  validation {
    condition     = var.image.tag != "" && var.image.tag != "latest"
    error_message = "Pin the image to a release tag: a deploy must say which build it runs."
  }

  validation {
    condition     = contains(["IfNotPresent", "Always"], var.image.pull_policy)
    error_message = "Use IfNotPresent or Always."
  }
}

variable "nats_url" {
  description = "The NATS URL the processes connect to (the nats module's url)."
  type        = string

  validation {
    condition     = can(regex("^(nats|tls)://", var.nats_url))
    error_message = "Give a nats:// or tls:// URL."
  }
}

variable "nats_tls_ca_secret" {
  description = "A Secret in the namespace with `ca.crt`, the authority a tls:// NATS URL is verified against; empty without TLS."
  type        = string
  default     = ""
}

variable "nats_seed_secrets" {
  description = "Each NATS identity's seed secret (the secrets module's nats_seed_secrets)."
  type = map(object({
    arn        = string
    version_id = string
  }))

  validation {
    condition     = contains(keys(var.nats_seed_secrets), "gateway")
    error_message = "The gateway's seed is missing: run nats-credentials again."
  }
}

variable "key_set_signer_public_key" {
  description = "The auth service's public NKEY, which the gateway checks the key set with."
  type        = string

  validation {
    condition     = can(regex("^U[A-Z2-7]{55}$", var.key_set_signer_public_key))
    error_message = "Give a user public NKEY (U followed by 55 base32 characters)."
  }
}

variable "postgres_secrets" {
  description = "Each service's PostgreSQL secret (the postgres module's service_secrets)."
  type = map(object({
    arn        = string
    version_id = string
  }))
}

variable "redis_secret" {
  description = "The Redis secret (the redis module's secret)."
  type = object({
    arn        = string
    version_id = string
  })
}

variable "otel_endpoint" {
  description = "The OTLP endpoint traces are sent to; empty for none."
  type        = string
  default     = ""
}

variable "gateway_replicas" {
  description = "How many gateway pods run (before the autoscaler)."
  type        = number
  default     = 2

  validation {
    condition     = var.gateway_replicas >= 2 && floor(var.gateway_replicas) == var.gateway_replicas
    error_message = "Run at least 2 gateway pods, so that a node's loss does not take the API down."
  }
}

variable "ingress" {
  description = "The gateway's Ingress: controller class, host name and the TLS Secret of its certificate."
  type = object({
    enabled    = bool
    class_name = optional(string, "nginx")
    host       = string
    tls_secret = optional(string, "")
  })

  validation {
    condition     = !var.ingress.enabled || can(regex("^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$", var.ingress.host))
    error_message = "Give the host name the API is served at."
  }
}

variable "store_cidr_blocks" {
  description = "Where PostgreSQL and Redis are (the private subnets): the only ranges the pods' network policy lets them reach on those ports."
  type        = list(string)

  validation {
    condition     = length(var.store_cidr_blocks) > 0 && alltrue([for cidr in var.store_cidr_blocks : can(cidrhost(cidr, 0))])
    error_message = "Give at least one valid CIDR block."
  }
}

variable "service_monitor" {
  description = "Whether the chart makes Prometheus Operator ServiceMonitors."
  type        = bool
  default     = false
}

variable "extra_values" {
  description = "More values files for the chart, as YAML strings, applied after these (replicas, resources, autoscaling per service)."
  type        = list(string)
  default     = []
}
