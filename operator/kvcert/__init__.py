"""kvcert: Azure Key Vault certificates as Kubernetes resources, with a local Key Vault."""

__version__ = "0.1.0"
