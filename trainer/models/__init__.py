"""ICD coders (paper 3.3-3.4): BERT-XML, BERT [CLS], bi-GRU attention, logistic regression; the run directory."""

from trainer.models.config import ARCHITECTURES, TABLE2_PRESETS, CoderConfig
from trainer.models.output import CoderOutput
from trainer.models.run_dir import FinetunedCoder, load_finetuned

__all__ = ["ARCHITECTURES", "TABLE2_PRESETS", "CoderConfig", "CoderOutput", "FinetunedCoder", "load_finetuned"]
