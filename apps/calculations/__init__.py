"""SPC calculations. `spc/` is the pure numpy engine; workers and models arrive with the pipeline."""
