"""Shared test set-up: this folder is on ``sys.path`` so helpers under ``tests/fakes`` import."""
