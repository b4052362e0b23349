"""Blob storage for sealed record content."""
