output "primary_endpoint" {
  description = "The primary's host name (it follows a failover)."
  value       = aws_elasticache_replication_group.redis.primary_endpoint_address
}

output "reader_endpoint" {
  description = "The replicas' host name."
  value       = aws_elasticache_replication_group.redis.reader_endpoint_address
}

output "port" {
  description = "The Redis port."
  value       = local.port
}

output "security_group_id" {
  description = "The replication group's security group."
  value       = aws_security_group.redis.id
}

output "secret" {
  description = "The secret (JSON with `url`): its ARN and the version Terraform wrote."
  value = {
    arn        = aws_secretsmanager_secret.redis.arn
    version_id = aws_secretsmanager_secret_version.redis.version_id
  }
}
