"""Placeholder, replaced by the fine-tuning entry point."""
