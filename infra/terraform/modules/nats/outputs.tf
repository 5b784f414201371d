output "url" {
  description = "The URL the platform's processes connect to, inside the namespace (tls:// when the servers require TLS)."
  value       = "${var.tls_secret_name == null ? "nats" : "tls"}://${helm_release.nats.name}:4222"
}

output "cluster_size" {
  description = "How many servers the cluster has."
  value       = var.cluster_size
}

output "release" {
  description = "The Helm release's name and chart version."
  value       = "${helm_release.nats.name} (nats ${helm_release.nats.version})"
}
