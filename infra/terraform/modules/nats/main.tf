# NATS: the official chart as a JetStream cluster of `cluster_size` servers, one per zone
# where it can, each with its file store on an encrypted EBS volume, and nobody let in
# without a credential: the servers include the authorization `nats-credentials` made
# (pkg/trust), which the secrets module keeps in Secrets Manager.

locals {
  authorization_dir = "/etc/nats-authorization"

  tls = var.tls_secret_name == null ? {} : {
    tls = {
      enabled    = true
      secretName = var.tls_secret_name
    }
  }
  cluster_tls = var.cluster_tls_secret_name == null ? {} : {
    tls = {
      enabled    = true
      secretName = var.cluster_tls_secret_name
    }
  }

  values = {
    config = {
      cluster = merge({
        enabled  = true
        replicas = var.cluster_size
      }, local.cluster_tls)
      jetstream = {
        enabled = true
        fileStore = {
          enabled = true
          dir     = "/data"
          pvc = {
            enabled          = true
            size             = var.jetstream_volume_size
            storageClassName = kubernetes_storage_class_v1.jetstream.metadata[0].name
          }
        }
        memoryStore = {
          enabled = false
        }
      }
      nats = merge({
        port = 4222
      }, local.tls)
      monitor = {
        enabled = true
        port    = 8222
      }
      # As infra/nats/nats.conf has them, then the authorization, included from the Secret
      # mounted beside the chart's configuration in /etc/nats-config (includes are relative
      # to it).
      merge = {
        max_payload    = "<< 1MB >>"
        write_deadline = "10s"
        "00$include"   = "../${basename(local.authorization_dir)}/authorization.conf"
      }
    }
    container = {
      merge = {
        resources = var.resources
      }
      patch = [{
        op   = "add"
        path = "/volumeMounts/-"
        value = {
          name      = "authorization"
          mountPath = local.authorization_dir
          readOnly  = true
        }
      }]
    }
    podTemplate = {
      topologySpreadConstraints = {
        "topology.kubernetes.io/zone" = {
          maxSkew           = 1
          whenUnsatisfiable = "DoNotSchedule"
        }
      }
      patch = [{
        op   = "add"
        path = "/spec/volumes/-"
        value = {
          name = "authorization"
          secret = {
            secretName = kubernetes_secret_v1.authorization.metadata[0].name
          }
        }
      }]
    }
    promExporter = {
      enabled = true
      podMonitor = {
        enabled = var.pod_monitor
      }
    }
    # Operators use the nats CLI with the operator's seed (docs/DEPLOY.md); a nats-box
    # without a credential could not connect anyway.
    natsBox = {
      enabled = false
    }
  }
}

# JetStream's volumes: gp3, encrypted with the cluster's key, kept when a claim goes.
resource "kubernetes_storage_class_v1" "jetstream" {
  metadata {
    name = "nats-jetstream"
  }

  storage_provisioner    = "ebs.csi.aws.com"
  reclaim_policy         = "Retain"
  volume_binding_mode    = "WaitForFirstConsumer"
  allow_volume_expansion = true

  parameters = {
    type      = "gp3"
    encrypted = "true"
    kmsKeyId  = var.volume_kms_key_arn
  }
}

data "aws_secretsmanager_secret_version" "authorization" {
  secret_id  = var.authorization_secret.arn
  version_id = var.authorization_secret.version_id
}

resource "kubernetes_secret_v1" "authorization" {
  metadata {
    name      = "nats-authorization"
    namespace = var.namespace
  }

  data = {
    "authorization.conf" = data.aws_secretsmanager_secret_version.authorization.secret_string
  }
}

resource "helm_release" "nats" {
  name       = "nats"
  namespace  = var.namespace
  repository = "https://nats-io.github.io/k8s/helm/charts/"
  chart      = "nats"
  version    = var.chart_version

  values = [yamlencode(local.values)]

  atomic          = true
  wait            = true
  timeout         = 900
  cleanup_on_fail = true
}
