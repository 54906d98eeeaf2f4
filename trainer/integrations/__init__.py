"""Reward functions for other trainers (verl) that score through the environment service."""
