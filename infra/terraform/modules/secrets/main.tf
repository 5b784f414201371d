# The platform's secrets in Secrets Manager, under one KMS key: the NATS credentials made by
# `nats-credentials --out DIR` (a seed per identity and the authorization nats-server
# includes), read from the directory the operator passes. The other modules keep their own
# generated secrets (database passwords, the Redis AUTH token) here too, under this key.
#
# Terraform's state holds what it writes here (the seeds among it): keep the state bucket
# encrypted and readable by the people who may operate the platform only (docs/DEPLOY.md).

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  credentials_dir = trimsuffix(var.nats_credentials_dir, "/")
  # `<identity>.nk` for every identity nats-credentials made: each service, the gateway, the
  # operator. A service added later gets its seed when the directory is made again.
  nats_identities = toset([for file in fileset(local.credentials_dir, "*.nk") : trimsuffix(file, ".nk")])
}

resource "aws_kms_key" "secrets" {
  description             = "${var.name}: Secrets Manager"
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

resource "aws_kms_alias" "secrets" {
  name          = "alias/${var.name}-secrets"
  target_key_id = aws_kms_key.secrets.key_id
}

resource "aws_secretsmanager_secret" "nats_seed" {
  for_each = local.nats_identities

  name                    = "${var.name}/nats/${each.key}.nk"
  description             = "The NATS NKEY seed of ${each.key}."
  kms_key_id              = aws_kms_key.secrets.arn
  recovery_window_in_days = var.recovery_window_in_days

  tags = var.tags
}

resource "aws_secretsmanager_secret_version" "nats_seed" {
  for_each = local.nats_identities

  secret_id     = aws_secretsmanager_secret.nats_seed[each.key].id
  secret_string = trimspace(file("${local.credentials_dir}/${each.key}.nk"))
}

resource "aws_secretsmanager_secret" "nats_authorization" {
  name                    = "${var.name}/nats/authorization.conf"
  description             = "The authorization nats-server includes: every identity's public key and permissions."
  kms_key_id              = aws_kms_key.secrets.arn
  recovery_window_in_days = var.recovery_window_in_days

  tags = var.tags
}

resource "aws_secretsmanager_secret_version" "nats_authorization" {
  secret_id     = aws_secretsmanager_secret.nats_authorization.id
  secret_string = file("${local.credentials_dir}/authorization.conf")
}
