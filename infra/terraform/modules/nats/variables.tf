variable "namespace" {
  description = "The namespace NATS runs in: the platform's, so that `nats://nats:4222` reaches it."
  type        = string
}

variable "chart_version" {
  description = "The version of the official nats chart (https://nats-io.github.io/k8s/helm/charts/)."
  type        = string
  default     = "2.14.2"

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.chart_version))
    error_message = "Pin an exact chart version, such as 2.14.2."
  }
}

variable "cluster_size" {
  description = "How many NATS servers form the cluster. JetStream needs a majority up: 3 tolerates one lost server, 5 two."
  type        = number
  default     = 3

  validation {
    condition     = contains([3, 5, 7], var.cluster_size)
    error_message = "Use 3, 5 or 7 servers: an odd number of at least three keeps a JetStream majority through a lost server."
  }
}

variable "jetstream_volume_size" {
  description = "Each server's JetStream file store volume (its limit too), such as 20Gi. Volumes can grow later, never shrink."
  type        = string
  default     = "20Gi"

  validation {
    condition     = can(regex("^[0-9]+(Gi|Ti)$", var.jetstream_volume_size))
    error_message = "Give a size in Gi or Ti, such as 20Gi."
  }
}

variable "volume_kms_key_arn" {
  description = "The KMS key the JetStream volumes are encrypted with."
  type        = string

  validation {
    condition     = startswith(var.volume_kms_key_arn, "arn:")
    error_message = "Give the key's ARN."
  }
}

variable "authorization_secret" {
  description = "The Secrets Manager secret holding the authorization nats-server includes (the secrets module's nats_authorization_secret)."
  type = object({
    arn        = string
    version_id = string
  })
}

variable "tls_secret_name" {
  description = "A kubernetes.io/tls Secret in the namespace for client connections; null for plain connections inside the cluster. With TLS, give the services and the gateway NATS_TLS_CA_FILE (docs/DEPLOY.md)."
  type        = string
  default     = null
}

variable "cluster_tls_secret_name" {
  description = "A kubernetes.io/tls Secret for the routes between the servers; null for plain routes. Its certificate must cover *.nats-headless."
  type        = string
  default     = null
}

variable "resources" {
  description = "Each NATS server container's requests and limits."
  type = object({
    requests = map(string)
    limits   = map(string)
  })
  default = {
    requests = { cpu = "500m", memory = "1Gi" }
    limits   = { cpu = "2", memory = "2Gi" }
  }
}

variable "pod_monitor" {
  description = "Whether to make a Prometheus Operator PodMonitor for the servers' exporter (the CRD must exist)."
  type        = bool
  default     = false
}
