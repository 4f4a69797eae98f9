"""Integrations built on infoatlas-loss (ManiSkill MaxMI key states, representation learning)."""
