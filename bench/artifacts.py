"""What several benchmark families need, built once per mode and sizes (``<work>/<mode>-<hash of the sizes>/``)
with the project's own steps (prepare, vocab, pretrain, finetune, export) and reused when already there.

- ``dataset``: CodiEsp (English diagnoses) through ``trainer.data.prepare``;
- ``vocab``: the EHR WordPiece (``trainer.vocab``) on CodiEsp background/train/dev + MTSamples, with the
  held-out notes of the OOV comparison;
- ``ehr_encoder``: EHR-BERT pretrained from scratch with that vocabulary (``trainer.pretrain.train``), in
  phases of growing max length (``BenchSizes.pretrain_phases``: mostly 128 tokens, then 512, as BERT did);
- ``finetuned_bert``: the paper's "Finetuned BERT": MiniLM with continued MLM on the same clinical text;
- ``speed_run`` / ``speed_repository``: the BERT-XML the speed families run, exported to a Triton model
  repository (``trainer.export.repository``): full mode's Table 2 row "EHR-BERT 1,024 + XML" (trained, so the engine's
  per-suggestion costs are realistic); quick mode's tiny model after two optimizer steps (shape only);
  ``export_variant(name, **options)``: the same run exported with other options (int8, unfused graph).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

from bench.common import BenchConfig, Stopwatch, say

MODEL_NAME = "bert_xml"


@dataclass
class Artifacts:
    cfg: BenchConfig
    build_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        """One directory per mode and sizes: changed sizes never reuse models built with other ones."""
        sizes = json.dumps(asdict(self.cfg.sizes), sort_keys=True, default=str)
        return self.cfg.work_dir / f"{self.cfg.mode}-{hashlib.sha256(f'{sizes}|{self.cfg.seed}'.encode()).hexdigest()[:8]}"

    def _timed_build(self, name: str, marker: Path, build) -> None:
        if marker.exists():
            say(f"reusing {name} in {marker.parent}")
            return
        say(f"building {name} ...")
        with Stopwatch() as sw:
            build()
        self.build_seconds[name] = round(sw.seconds, 1)
        say(f"{name} built in {sw.seconds:.0f} s")

    @cached_property
    def dataset(self) -> Path:
        from trainer.data.prepare import PrepareConfig, prepare_dataset

        out = self.root / "codiesp"
        config = PrepareConfig(out=out, codiesp=self.cfg.data_dir / "codiesp", deid=self.cfg.sizes.prepare_deid, show_progress=True)
        self._timed_build("CodiEsp dataset", out / "labels.json", lambda: prepare_dataset(config))
        return out

    @property
    def eval_split(self) -> str:
        from trainer.data.dataset import evaluation_split

        return evaluation_split(self.dataset)

    @cached_property
    def corpus(self):
        """Vocabulary/pretraining text and the held-out notes (``trainer.pretrain.data.load_corpus``), de-identified
        once per artifacts root and kept in ``corpus.json`` (de-identifying ~5,000 notes costs minutes; every
        report reads the held-out notes again)."""
        from trainer.pretrain.data import Corpus, load_corpus

        cached = self.root / "corpus.json"
        if cached.is_file():
            say(f"reusing the corpus in {cached}")
            return Corpus(**json.loads(cached.read_text(encoding="utf-8")))
        corpus = load_corpus(self.cfg.data_dir)
        if self.cfg.sizes.prepare_deid:
            corpus.deidentify()
        self.root.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".partial")
        partial.write_text(json.dumps(asdict(corpus)), encoding="utf-8")
        partial.replace(cached)
        return corpus

    @cached_property
    def vocab(self) -> Path:
        from trainer.vocab import save_tokenizer_dir, train_wordpiece

        out = self.root / "vocab"
        self._timed_build("EHR WordPiece vocabulary", out / "tokenizer.json", lambda: save_tokenizer_dir(train_wordpiece(self.corpus.training_texts()), out))
        return out

    @cached_property
    def ehr_encoder(self) -> Path:
        """EHR-BERT pretrained from scratch (MLM), one phase per (max length, steps) of ``pretrain_phases``, each
        continuing the previous; every phase dir has ``summary.json`` (throughput, losses) and ``loss.png``."""
        sizes = self.cfg.sizes
        previous: str = sizes.pretrain_encoder
        for i, (length, steps) in enumerate(sizes.pretrain_phases, 1):
            out = self.root / "pretrain" / f"phase{i}-{length}"
            self._timed_build(f"EHR-BERT ({sizes.pretrain_encoder}) pretraining phase {i}: {steps} steps at {length} tokens", out / "model" / "config.json",
                              lambda out=out, init=previous, length=length, steps=steps: self._pretrain(out, init, length, steps, from_scratch=i == 1))
            previous = str(out / "model")
        return Path(previous)

    @property
    def pretrain_phase_dirs(self) -> list[Path]:
        return [self.root / "pretrain" / f"phase{i}-{length}" for i, (length, _) in enumerate(self.cfg.sizes.pretrain_phases, 1)]

    def _pretrain(self, out: Path, init: str, length: int, steps: int, from_scratch: bool, tokenizer: Path | None = None, lr: float | None = None) -> None:
        import torch

        from trainer.encoder import encoder_config
        from trainer.pretrain.train import PretrainSetup, pretrain
        from trainer.training import OptimConfig, cleanup, setup_distributed

        sizes = self.cfg.sizes
        torch.set_num_threads(self.cfg.threads)
        encoder = encoder_config(init, None, [f"{k}={v}" for k, v in sizes.pretrain_encoder_overrides.items()]) if from_scratch else None
        setup = PretrainSetup(init=init, encoder=encoder, tokenizer_dir=str(tokenizer or self.vocab), max_length=length,
                              corpus={"sources": ["codiesp", "mtsamples", "icd10cm"], "deid": sizes.prepare_deid})
        tokens_per_step = sizes.pretrain_tokens_per_step
        optim = OptimConfig(lr=lr or sizes.pretrain_lr, batch_size=max(1, tokens_per_step // length), max_steps=steps, epochs=100, warmup_ratio=0.05,
                            checkpoint_every=0, log_every=10, seed=self.cfg.seed, precision=sizes.precision)
        info = setup_distributed("cpu")
        try:
            pretrain(setup, optim, info, out, self.corpus.training_texts(), self.corpus.held_out)
        finally:
            cleanup()

    @cached_property
    def finetuned_bert(self) -> Path:
        """The paper's "Finetuned BERT": the general-domain MiniLM, continued MLM on the same clinical text (its own
        vocabulary; positions as MiniLM's 512), ``minilm_mlm_steps`` steps."""
        from trainer.encoder import MINILM, minilm_dir

        sizes = self.cfg.sizes
        out = self.root / "pretrain-minilm"
        self._timed_build(f"Finetuned BERT: MiniLM + {sizes.minilm_mlm_steps} MLM steps at {sizes.minilm_mlm_length} tokens", out / "model" / "config.json",
                          lambda: self._pretrain(out, MINILM, sizes.minilm_mlm_length, sizes.minilm_mlm_steps, from_scratch=False,
                                                 tokenizer=minilm_dir(), lr=sizes.minilm_mlm_lr))
        return out / "model"

    @cached_property
    def speed_run(self) -> Path:
        """The served combination when the mode trains one of the speed shape (``quality.speed_model_row``: the
        EHR-BERT + XML row fused with the description scorer); otherwise a BERT-XML of the speed size after two
        optimizer steps, fused too, whose weights are meaningless: speed is right, suggestion counts are inflated."""
        from bench.families import quality
        from trainer.describe.fuse import has_descriptions
        from trainer.models import CoderConfig

        sizes = self.cfg.sizes
        row = quality.speed_model_row(self.cfg)
        if row is not None:
            out = quality.row_dir(self, row)
            self._timed_build(f"speed model = quality row {row.name!r}", out / "thresholds.json", lambda: quality.train_row(self.cfg, self, row))
        else:
            out = self.root / "speed-run"
            coder = CoderConfig(architecture="bert-xml", encoder=sizes.speed_encoder, max_length=max(sizes.speed_lengths), label_init="random")
            self._timed_build(f"speed model (BERT-XML, {sizes.speed_encoder} encoder, 2 steps)", out / "thresholds.json",
                              lambda: quality.finetune_row(self.cfg, self.dataset, out, coder, self.vocab / "tokenizer.json", max_steps=2))
        self._timed_build("speed model's description scorer and fusion", out / "fusion.json", lambda: quality.fuse_served(self.cfg, self, out))
        assert has_descriptions(out)
        return out

    @cached_property
    def speed_repository(self) -> Path:
        """``speed_run`` exported: config.pbtxt is the CPU (Python backend) variant the local tritonserver serves."""
        from trainer.export.repository import ExportOptions, export_model

        repo = self.root / "model_repository-fused"  # new name: an unfused export in an older work directory is not reused
        options = ExportOptions(name=MODEL_NAME, variants=("cpu-python", "gpu-onnxruntime"))
        self._timed_build("Triton model repository", repo / MODEL_NAME / "1" / "model.onnx", lambda: export_model(self.speed_run, repo, options))
        return repo

    def export_variant(self, name: str, **options: object) -> Path:
        """``speed_run`` exported with other ``ExportOptions`` (e.g. ``int8=True``) into its own repository."""
        from trainer.export.repository import ExportOptions, export_model

        repo = self.root / "export-variants" / name
        export = ExportOptions(name=MODEL_NAME, variants=("cpu-python",), **options)
        self._timed_build(f"model exported as {name}", repo / MODEL_NAME / "1" / "model.onnx", lambda: export_model(self.speed_run, repo, export))
        return repo

    @classmethod
    def prebuilt(cls, cfg: BenchConfig, **built: object) -> "Artifacts":
        """Artifacts some of which exist already (e.g. test fixtures): ``dataset=``, ``vocab=``, ``corpus=``,
        ``ehr_encoder=``, ``speed_run=``, ``speed_repository=``; the others are built on demand."""
        art = cls(cfg)
        for name, value in built.items():
            if not isinstance(getattr(cls, name, None), cached_property):
                raise ValueError(f"{name!r} is not a benchmark artifact")
            art.__dict__[name] = value  # what cached_property would have stored
        return art

    def is_built(self, name: str) -> bool:
        """Whether this run already has artifact ``name`` (without building it)."""
        return name in self.__dict__

    def summary(self) -> dict:
        return {"work_dir": str(self.root), "build_seconds": self.build_seconds}


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))
