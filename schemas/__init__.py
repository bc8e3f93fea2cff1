"""Contracts shared by the trainer and the engine (pydantic models), plus the few torch-free
implementations both sides must run identically: the ICD-10-CM code set, text normalisation and
segmentation, and the command-line style."""
