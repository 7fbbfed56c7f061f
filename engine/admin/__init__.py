"""Administration of a library: statistics and duplicate groups, `doctor`, and `migrate` between stores."""
