# The platform's services, from apps/services.toml. Each service whose store is postgres or
# mongo gets its own database and role (the mongo ones keep their documents in PostgreSQL
# JSONB here), and every service is deployed by the chart. `cargo xtask new-service` adds a
# service here with the rest.
# BEGIN generated services: from apps/services.toml by `cargo xtask sync-services`; do not edit
locals {
  services = {
    "product" = {
      name       = "product"
      store      = "postgres"
      admin_port = 9101
    }
    "auth" = {
      name       = "auth"
      store      = "postgres"
      admin_port = 9102
    }
    "user" = {
      name       = "user"
      store      = "mongo"
      admin_port = 9103
    }
    "address" = {
      name       = "address"
      store      = "postgres"
      admin_port = 9104
    }
    "shop" = {
      name       = "shop"
      store      = "postgres"
      admin_port = 9105
    }
    "cart" = {
      name       = "cart"
      store      = "postgres"
      admin_port = 9106
    }
    "voucher" = {
      name       = "voucher"
      store      = "postgres"
      admin_port = 9107
    }
    "order" = {
      name       = "order"
      store      = "postgres"
      admin_port = 9108
    }
    "payment" = {
      name       = "payment"
      store      = "postgres"
      admin_port = 9109
    }
    "notification" = {
      name       = "notification"
      store      = "postgres"
      admin_port = 9110
    }
    "comment" = {
      name       = "comment"
      store      = "mongo"
      admin_port = 9111
    }
    "settings" = {
      name       = "settings"
      store      = "postgres"
      admin_port = 9112
    }
  }
}
# END generated services
