"""Data preparation, vocabulary, pretraining, fine-tuning, evaluation and export."""
