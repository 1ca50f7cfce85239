"""Noise: single-step SNN training with membrane noise, converted to multi-step."""
