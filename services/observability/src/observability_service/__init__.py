"""Observability service: the job ledger, the outbound API call log and the release check."""
