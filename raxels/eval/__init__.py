"""Evaluation: pose metrics, video metrics."""
