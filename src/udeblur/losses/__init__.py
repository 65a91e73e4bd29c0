"""Losses as plain functions."""
