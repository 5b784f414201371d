output "kms_key_arn" {
  description = "The key every secret of the platform is encrypted with."
  value       = aws_kms_key.secrets.arn
}

output "nats_identities" {
  description = "The identities whose seeds are stored: each service, the gateway, the operator."
  value       = local.nats_identities
}

output "nats_seed_secrets" {
  description = "Each identity's seed secret: its ARN and the version Terraform wrote."
  value = {
    for identity in local.nats_identities : identity => {
      arn        = aws_secretsmanager_secret.nats_seed[identity].arn
      version_id = aws_secretsmanager_secret_version.nats_seed[identity].version_id
    }
  }
}

output "nats_authorization_secret" {
  description = "The secret holding the authorization nats-server includes: its ARN and the version Terraform wrote."
  value = {
    arn        = aws_secretsmanager_secret.nats_authorization.arn
    version_id = aws_secretsmanager_secret_version.nats_authorization.version_id
  }
}

output "key_set_signer_public_key" {
  description = "The auth service's public NKEY: the gateway checks the key set it fetches with it. Not a secret."
  value       = trimspace(file("${local.credentials_dir}/key-set-signer.pub"))
}
