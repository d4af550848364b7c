"""Helpers every world builder shares: seeded random streams and chat messages.

Random streams are seeded with "{seed}:{purpose}" strings, which random.Random hashes with SHA-512, so the output
does not depend on PYTHONHASHSEED.
"""
import random


def seeded_rng(seed: int, purpose: str) -> random.Random:
    """One independent, reproducible random stream per purpose, so changing one file's size leaves the others alone."""
    return random.Random(f"{seed}:{purpose}")


def msg(role: str, content: str) -> dict:
    return {"role": role, "content": content}
