"""Benchmarks of the InfoAtlas estimator: bmi tasks, classical baselines, accuracy tables."""
