# Developer entry points. Recipes stay thin: the logic lives in `cargo xtask` (xtask/).

CARGO ?= cargo
ROLE ?= admin

.DEFAULT_GOAL := help
.PHONY: help deps up down build test lint fmt dev-token bench new-service

help: ## List the targets
	@echo "Emporium: make <target>"
	@echo
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{ printf "  %-10s %s\n", $$1, $$2 }'

deps: ## Install what is missing (nats-server, redis-server, PostgreSQL, the dev SMTP server, Node.js and npm, chromium), link them into .dev/bin
	$(CARGO) xtask deps

up: ## Build and run the dev stack (NATS, PostgreSQL, Redis, services, gateway) until Ctrl-C
	$(CARGO) xtask up

down: ## Stop a dev stack left running by an interrupted `make up`
	$(CARGO) xtask down

build: ## Build every crate and binary
	$(CARGO) build --workspace --all-targets

test: deps ## Run every test (against private servers on random ports), then check infra/
	$(CARGO) xtask test
	$(CARGO) xtask check-infra

bench: deps ## Build in release mode and measure the platform (docs/PERFORMANCE.md); not part of test
	$(CARGO) xtask bench

lint: ## Check formatting, clippy lints (warnings are errors) and the dependency graph (cargo deny)
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings
	$(CARGO) xtask deny

fmt: ## Format the code
	$(CARGO) fmt --all

new-service: ## Generate a service: make new-service NAME=gift-card [STORE=postgres|redis|mongo] [DESCRIPTION="..."]
	@test -n "$(NAME)" || { echo 'usage: make new-service NAME=<name> [STORE=postgres|redis|mongo] [DESCRIPTION="..."]'; exit 2; }
	$(CARGO) xtask new-service $(NAME) $(if $(STORE),--store $(STORE)) $(if $(DESCRIPTION),--description "$(DESCRIPTION)")

dev-token: ## Print a dev access token: make dev-token ROLE=admin|customer|seller
	@$(CARGO) xtask dev-token --role $(ROLE)
