-- The pool's high-water mark between two samples: a burst of jobs shorter than the sampling
-- interval (the seeds' eight jobs at :00 held the pool for ~50 ms) shows here even when the
-- instantaneous utilization at the sample is 0. NULL in rows written before this column.
ALTER TABLE pool_samples ADD COLUMN peak_utilization real;
