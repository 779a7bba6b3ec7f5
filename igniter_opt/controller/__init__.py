"""The provisioning service's controller: it will turn requests into plans and deployments,
above deploy and below the CLI (docs/architecture.md). Its API comes in a later change."""
