"""Energy assessment: operation counts, per-processor estimates, meters and the paper's protocol."""
