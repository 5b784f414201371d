output "cluster_name" {
  description = "The EKS cluster: `aws eks update-kubeconfig --name <this>`."
  value       = module.eks.cluster_name
}

output "postgres_address" {
  description = "The PostgreSQL primary's host name."
  value       = module.postgres.address
}

output "postgres_replica_addresses" {
  description = "The read replicas' host names."
  value       = module.postgres.replica_addresses
}

output "postgres_databases" {
  description = "Each service's database."
  value       = module.postgres.databases
}

output "redis_primary_endpoint" {
  description = "The Redis primary's host name."
  value       = module.redis.primary_endpoint
}

output "nats_url" {
  description = "The NATS URL inside the namespace."
  value       = module.nats.url
}

output "release" {
  description = "The platform's Helm release."
  value       = module.emporium.release
}
