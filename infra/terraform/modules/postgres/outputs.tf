output "address" {
  description = "The primary's host name."
  value       = aws_db_instance.primary.address
}

output "port" {
  description = "The port of the primary and the replicas."
  value       = local.port
}

output "replica_addresses" {
  description = "The read replicas' host names."
  value       = aws_db_instance.replica[*].address
}

output "security_group_id" {
  description = "The instance's security group."
  value       = aws_security_group.postgres.id
}

output "databases" {
  description = "Each service's database (and role) name."
  value       = local.databases
}

output "service_secrets" {
  description = "Each service's secret (JSON with `url`): its ARN and the version Terraform wrote."
  value = {
    for service in keys(local.databases) : service => {
      arn        = aws_secretsmanager_secret.service[service].arn
      version_id = aws_secretsmanager_secret_version.service[service].version_id
    }
  }
}

output "bootstrap_job" {
  description = "The Job that made the databases; it has completed when this is known."
  value       = kubernetes_job_v1.bootstrap.metadata[0].name
}
