# The platform: its chart (infra/helm/emporium) with the Kubernetes Secrets it reads, made
# from the values in Secrets Manager: each service's and the gateway's NATS seed, each
# service's PostgreSQL URL, the Redis URL.

locals {
  # The operator's seed stays in Secrets Manager: no pod of the platform connects as it.
  nats_identities = toset([for identity in keys(var.nats_seed_secrets) : identity if identity != "operator"])
  # Services whose state is in PostgreSQL (the document services too: on AWS they keep their
  # documents in PostgreSQL JSONB) and that have no database are a mistake worth stopping on.
  missing_databases = [for name, service in var.services : name if service.store != "redis" && !contains(keys(var.postgres_secrets), name)]
}

data "aws_secretsmanager_secret_version" "nats_seed" {
  for_each = local.nats_identities

  secret_id  = var.nats_seed_secrets[each.key].arn
  version_id = var.nats_seed_secrets[each.key].version_id
}

data "aws_secretsmanager_secret_version" "postgres" {
  for_each = var.postgres_secrets

  secret_id  = each.value.arn
  version_id = each.value.version_id
}

data "aws_secretsmanager_secret_version" "redis" {
  secret_id  = var.redis_secret.arn
  version_id = var.redis_secret.version_id
}

resource "kubernetes_secret_v1" "nats_credentials" {
  metadata {
    name      = "${var.release_name}-nats-credentials"
    namespace = var.namespace
  }

  # `<identity>.nk` per service and the gateway; each pod mounts its own key only.
  data = merge(
    { for identity in local.nats_identities : "${identity}.nk" => data.aws_secretsmanager_secret_version.nats_seed[identity].secret_string },
    { "key-set-signer.pub" = var.key_set_signer_public_key },
  )
}

resource "kubernetes_secret_v1" "postgres" {
  metadata {
    name      = "${var.release_name}-postgres"
    namespace = var.namespace
  }

  # `<service>` = its DATABASE_URL.
  data = { for service, version in data.aws_secretsmanager_secret_version.postgres : service => jsondecode(version.secret_string).url }
}

resource "kubernetes_secret_v1" "redis" {
  metadata {
    name      = "${var.release_name}-redis"
    namespace = var.namespace
  }

  data = {
    url = jsondecode(data.aws_secretsmanager_secret_version.redis.secret_string).url
  }
}

resource "helm_release" "emporium" {
  name      = var.release_name
  namespace = var.namespace
  chart     = var.chart_path

  values = concat([yamlencode({
    image = {
      repository = var.image.repository
      tag        = var.image.tag
      pullPolicy = var.image.pull_policy
    }
    nats = {
      url               = var.nats_url
      credentialsSecret = kubernetes_secret_v1.nats_credentials.metadata[0].name
      tlsCaSecret       = var.nats_tls_ca_secret
    }
    postgres = {
      existingSecret = kubernetes_secret_v1.postgres.metadata[0].name
    }
    redis = {
      existingSecret = kubernetes_secret_v1.redis.metadata[0].name
    }
    mongodb = {
      existingSecret = ""
    }
    otel = {
      endpoint = var.otel_endpoint
    }
    gateway = {
      replicas = var.gateway_replicas
      ingress = {
        enabled   = var.ingress.enabled
        className = var.ingress.class_name
        host      = var.ingress.host
        tlsSecret = var.ingress.tls_secret
      }
    }
    serviceMonitor = {
      enabled = var.service_monitor
    }
    networkPolicy = {
      egress = {
        postgres = {
          to = [for cidr in var.store_cidr_blocks : { ipBlock = { cidr = cidr } }]
        }
        redis = {
          to = [for cidr in var.store_cidr_blocks : { ipBlock = { cidr = cidr } }]
        }
      }
    }
  })], var.extra_values)

  atomic          = true
  wait            = true
  timeout         = 900
  cleanup_on_fail = true

  lifecycle {
    precondition {
      condition     = length(local.missing_databases) == 0
      error_message = "These services keep their state in PostgreSQL but have no database: ${join(", ", local.missing_databases)}."
    }

    precondition {
      condition     = !startswith(var.nats_url, "tls://") || var.nats_tls_ca_secret != ""
      error_message = "NATS requires TLS: give nats_tls_ca_secret, the Secret with the CA the processes verify the servers with."
    }
  }
}
