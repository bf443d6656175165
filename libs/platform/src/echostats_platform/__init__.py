"""Shared foundations for every EchoStats process: settings, logging, clients, crypto, errors."""
