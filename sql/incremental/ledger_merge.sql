-- The ledger of merged objects: each object merged now, with the date whose run merged it.
MERGE INTO {ledger} l
USING batch_objects o
ON l.topic = o.topic AND l.part = o.part AND l.start_offset = o.start_offset
WHEN MATCHED THEN UPDATE SET object_key = o.object_key, merged_for = '{date}'
WHEN NOT MATCHED THEN INSERT (topic, part, start_offset, object_key, merged_for) VALUES (o.topic, o.part, o.start_offset, o.object_key, '{date}')
