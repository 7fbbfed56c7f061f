"""adsearch engine: encoders, Qdrant store, ingest and hybrid search. No web code lives here."""
