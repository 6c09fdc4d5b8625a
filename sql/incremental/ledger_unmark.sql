-- Spark: the batch's objects leave the ledger before their versions are replaced; the ledger
-- merge at the end of the run marks them again.
MERGE INTO {ledger} l
USING batch_objects o
ON l.topic = o.topic AND l.part = o.part AND l.start_offset = o.start_offset
WHEN MATCHED THEN DELETE
