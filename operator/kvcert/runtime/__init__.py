"""The operator's adapters: Kubernetes and Key Vault I/O that performs reconcile's actions.

Handlers gather and apply through here; reconcile never sees any of it.
"""
