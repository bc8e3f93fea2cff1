"""Data: ICD-10-CM label preparation, importers, dataset splits, statistics and synthetic notes."""
