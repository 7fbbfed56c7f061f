"""Data for adsearch: the synthetic sample generator and helpers to fetch the public Pitt ads set."""
