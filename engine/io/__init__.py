"""The edges of the stream: the Kafka source, the sinks (output topic, audit topic, worklist), the dead-letter
writer and the processed-note store that keeps re-deliveries byte-identical."""
