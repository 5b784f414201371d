# PostgreSQL on RDS: one multi-AZ instance, encrypted with its own KMS key, reachable from the
# cluster's nodes only and over TLS only, with a database and a role per service, and
# `read_replica_count` read replicas.
#
# The databases and roles are made by a Kubernetes Job in the cluster (create-databases.sh),
# not by Terraform's postgresql provider: the instance is in private subnets, and the Job runs
# where the services run, so Terraform needs no network path to it. The Job runs again
# whenever the list of databases or a password changes, and does nothing twice.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  # Service names may have hyphens; PostgreSQL names get underscores.
  databases = { for service in var.services : service => replace(service, "-", "_") }
  port      = 5432
}

resource "aws_kms_key" "postgres" {
  description             = "${var.name}: RDS storage and Performance Insights"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AccountAdministers"
      Effect    = "Allow"
      Principal = { AWS = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root" }
      Action    = "kms:*"
      Resource  = "*"
    }]
  })

  tags = var.tags
}

resource "aws_kms_alias" "postgres" {
  name          = "alias/${var.name}-postgres"
  target_key_id = aws_kms_key.postgres.key_id
}

resource "aws_db_subnet_group" "postgres" {
  name       = var.name
  subnet_ids = var.subnet_ids

  tags = var.tags
}

resource "aws_security_group" "postgres" {
  name        = "${var.name}-postgres"
  description = "PostgreSQL: reachable from the EKS nodes only"
  vpc_id      = var.vpc_id

  tags = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "postgres" {
  for_each = toset(var.allowed_security_group_ids)

  security_group_id            = aws_security_group.postgres.id
  description                  = "PostgreSQL from the cluster"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = local.port
  to_port                      = local.port
}

resource "aws_db_parameter_group" "postgres" {
  name_prefix = "${var.name}-"
  family      = "postgres${split(".", var.engine_version)[0]}"
  description = "Emporium: TLS only, slow and DDL statements logged"

  # Connections without TLS are refused.
  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  parameter {
    name  = "log_min_duration_statement"
    value = tostring(var.log_min_duration_statement_ms)
  }

  parameter {
    name  = "log_statement"
    value = "ddl"
  }

  parameter {
    name  = "log_connections"
    value = "1"
  }

  parameter {
    name  = "log_disconnections"
    value = "1"
  }

  tags = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_iam_role" "monitoring" {
  name = "${var.name}-rds-monitoring"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "monitoring.rds.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })

  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "monitoring" {
  role       = aws_iam_role.monitoring.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "random_password" "master" {
  length  = 40
  special = false
}

resource "aws_db_instance" "primary" {
  identifier     = var.name
  engine         = "postgres"
  engine_version = var.engine_version
  instance_class = var.instance_class
  username       = "emporium_admin"
  password       = random_password.master.result
  port           = local.port

  allocated_storage     = var.allocated_storage_gib
  max_allocated_storage = var.max_allocated_storage_gib
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.postgres.arn

  multi_az               = true
  db_subnet_group_name   = aws_db_subnet_group.postgres.name
  vpc_security_group_ids = [aws_security_group.postgres.id]
  publicly_accessible    = false
  parameter_group_name   = aws_db_parameter_group.postgres.name
  ca_cert_identifier     = "rds-ca-rsa2048-g1"

  iam_database_authentication_enabled = true

  backup_retention_period   = var.backup_retention_days
  backup_window             = "02:00-03:00"
  maintenance_window        = "sun:03:30-sun:04:30"
  copy_tags_to_snapshot     = true
  deletion_protection       = true
  skip_final_snapshot       = false
  final_snapshot_identifier = "${var.name}-final"
  delete_automated_backups  = false

  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.postgres.arn
  performance_insights_retention_period = 7
  monitoring_interval                   = 60
  monitoring_role_arn                   = aws_iam_role.monitoring.arn
  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]

  auto_minor_version_upgrade  = true
  allow_major_version_upgrade = false
  apply_immediately           = false

  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.max_allocated_storage_gib >= var.allocated_storage_gib
      error_message = "max_allocated_storage_gib must be at least allocated_storage_gib."
    }
  }

  depends_on = [aws_iam_role_policy_attachment.monitoring]
}

# Read replicas: for reads that may lag the primary by a few seconds (reports, search).
# They replicate every database, so they are as encrypted and as closed as the primary.
resource "aws_db_instance" "replica" {
  #checkov:skip=CKV_AWS_293:A read replica holds a copy of the primary's data, which keeps deletion protection; scaling replicas down must not need a second apply.
  count = var.read_replica_count

  identifier          = "${var.name}-replica-${count.index + 1}"
  replicate_source_db = aws_db_instance.primary.identifier
  instance_class      = coalesce(var.read_replica_instance_class, var.instance_class)
  storage_type        = "gp3"
  # In the primary's region, a replica is encrypted with the primary's key; RDS refuses
  # another key here.
  storage_encrypted = true

  multi_az               = false
  vpc_security_group_ids = [aws_security_group.postgres.id]
  publicly_accessible    = false
  parameter_group_name   = aws_db_parameter_group.postgres.name
  ca_cert_identifier     = "rds-ca-rsa2048-g1"

  iam_database_authentication_enabled = true

  backup_retention_period = 1
  copy_tags_to_snapshot   = true
  deletion_protection     = false
  skip_final_snapshot     = true

  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.postgres.arn
  performance_insights_retention_period = 7
  monitoring_interval                   = 60
  monitoring_role_arn                   = aws_iam_role.monitoring.arn
  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]

  auto_minor_version_upgrade = true
  apply_immediately          = false

  tags = var.tags
}

# A role and a password per service, in Secrets Manager as the URL the service is given.
resource "random_password" "service" {
  for_each = local.databases

  length  = 40
  special = false
}

resource "aws_secretsmanager_secret" "service" {
  for_each = local.databases

  name                    = "${var.secret_prefix}/postgres/${each.key}"
  description             = "The PostgreSQL URL of the ${each.key} service (its own database and role)."
  kms_key_id              = var.secrets_kms_key_arn
  recovery_window_in_days = var.secret_recovery_window_in_days

  tags = var.tags
}

resource "aws_secretsmanager_secret_version" "service" {
  for_each = local.databases

  secret_id = aws_secretsmanager_secret.service[each.key].id
  secret_string = jsonencode({
    url      = "postgres://${each.value}:${random_password.service[each.key].result}@${aws_db_instance.primary.address}:${local.port}/${each.value}?sslmode=require"
    username = each.value
    password = random_password.service[each.key].result
    host     = aws_db_instance.primary.address
    port     = local.port
    dbname   = each.value
  })
}

resource "aws_secretsmanager_secret" "master" {
  name                    = "${var.secret_prefix}/postgres/master"
  description             = "The RDS master user: for the database Job and for emergencies, never for a service."
  kms_key_id              = var.secrets_kms_key_arn
  recovery_window_in_days = var.secret_recovery_window_in_days

  tags = var.tags
}

resource "aws_secretsmanager_secret_version" "master" {
  secret_id = aws_secretsmanager_secret.master.id
  secret_string = jsonencode({
    username = aws_db_instance.primary.username
    password = random_password.master.result
    host     = aws_db_instance.primary.address
    port     = local.port
  })
}

# The Job that makes the databases and roles.
locals {
  # A hash of the passwords says nothing about them: it may name the Job in plain sight.
  bootstrap_version = substr(nonsensitive(sha256(jsonencode([
    local.databases,
    [for service in keys(local.databases) : random_password.service[service].result],
    file("${path.module}/create-databases.sh"),
  ]))), 0, 10)
}

resource "kubernetes_secret_v1" "bootstrap" {
  metadata {
    name      = "${var.name}-database-bootstrap"
    namespace = var.kubernetes_namespace
  }

  data = merge(
    { for service, database in local.databases : "password-${database}" => random_password.service[service].result },
    { admin-url = "postgres://${aws_db_instance.primary.username}:${random_password.master.result}@${aws_db_instance.primary.address}:${local.port}/postgres?sslmode=require" },
  )
}

resource "kubernetes_config_map_v1" "bootstrap" {
  metadata {
    name      = "${var.name}-database-bootstrap"
    namespace = var.kubernetes_namespace
  }

  data = {
    "create-databases.sh" = file("${path.module}/create-databases.sh")
  }
}

resource "kubernetes_job_v1" "bootstrap" {
  metadata {
    # A new Job whenever the databases, the passwords or the script change.
    name      = "${var.name}-databases-${local.bootstrap_version}"
    namespace = var.kubernetes_namespace
  }

  spec {
    backoff_limit              = 6
    ttl_seconds_after_finished = 86400

    template {
      metadata {
        labels = { "app.kubernetes.io/name" = "database-bootstrap" }
      }

      spec {
        restart_policy                  = "OnFailure"
        automount_service_account_token = false

        security_context {
          run_as_non_root = true
          run_as_user     = 70
          run_as_group    = 70
          seccomp_profile {
            type = "RuntimeDefault"
          }
        }

        container {
          name              = "create-databases"
          image             = var.bootstrap_image
          image_pull_policy = "Always"
          command           = ["/bin/sh", "/etc/emporium/create-databases.sh"]

          env {
            name = "ADMIN_URL"
            value_from {
              secret_key_ref {
                name = kubernetes_secret_v1.bootstrap.metadata[0].name
                key  = "admin-url"
              }
            }
          }

          security_context {
            allow_privilege_escalation = false
            read_only_root_filesystem  = true
            privileged                 = false
            capabilities {
              drop = ["ALL"]
            }
          }

          resources {
            requests = { cpu = "50m", memory = "64Mi" }
            limits   = { cpu = "500m", memory = "128Mi" }
          }

          volume_mount {
            name       = "script"
            mount_path = "/etc/emporium"
            read_only  = true
          }

          volume_mount {
            name       = "passwords"
            mount_path = "/run/emporium/databases"
            read_only  = true
          }
        }

        volume {
          name = "script"
          config_map {
            name = kubernetes_config_map_v1.bootstrap.metadata[0].name
          }
        }

        # Each password file is named after its database, which is what the script reads.
        volume {
          name = "passwords"
          secret {
            secret_name = kubernetes_secret_v1.bootstrap.metadata[0].name
            dynamic "items" {
              for_each = local.databases
              content {
                key  = "password-${items.value}"
                path = items.value
              }
            }
          }
        }
      }
    }
  }

  wait_for_completion = true

  timeouts {
    create = "10m"
    update = "10m"
  }
}
