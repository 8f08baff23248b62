"""The local Key Vault certificates service (`kvcert vault serve`)."""
