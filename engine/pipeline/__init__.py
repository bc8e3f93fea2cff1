"""The engine's pipeline stages: source -> parse -> de-identify -> segment -> infer -> aggregate -> FHIR -> sinks.
Each stage is a small module with plain inputs and outputs; ``types`` holds what flows between them."""
