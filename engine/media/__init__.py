"""Media: where images come from (local folders, URLs) read as untrusted input, safe decoding under
one pixel limit, and the originals and thumbnails served back (only the bytes that were ingested)."""
