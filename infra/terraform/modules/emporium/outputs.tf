output "release" {
  description = "The platform's Helm release: name, revision and image tag."
  value       = "${helm_release.emporium.name} revision ${helm_release.emporium.metadata[0].revision} (${var.image.tag})"
}

output "secrets" {
  description = "The Kubernetes Secrets the chart reads."
  value = {
    nats_credentials = kubernetes_secret_v1.nats_credentials.metadata[0].name
    postgres         = kubernetes_secret_v1.postgres.metadata[0].name
    redis            = kubernetes_secret_v1.redis.metadata[0].name
  }
}
