"""``python -m trainer export``: a fine-tuning run -> a new version in a Triton model repository."""

from __future__ import annotations

import argparse
from pathlib import Path

from schemas.context import ContextPolicy
from trainer.export.repository import ExportOptions
from trainer.export.triton_config import VARIANTS, ServingConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", type=Path, required=True, metavar="RUN_DIR", help="fine-tuning run directory (trainer finetune --out)")
    parser.add_argument("--repository", type=Path, required=True, metavar="DIR", help="Triton model repository (created if absent)")
    parser.add_argument("--name", default=ExportOptions.name,
                        help=f"model name in the repository (default: {ExportOptions.name} = ICDCODER_TRITON_MODEL_NAME's default)")
    parser.add_argument("--variant", action="append", choices=VARIANTS, metavar="VARIANT",
                        help=f"config variant(s), repeatable: {', '.join(VARIANTS)}. The first becomes config.pbtxt, "
                             f"others configs/<variant>.pbtxt (tritonserver --model-config-name). Default: {', '.join(ExportOptions.variants)}")
    parser.add_argument("--version", type=int, default=None, help="version number (default: highest existing + 1); never overwrites")
    parser.add_argument("--fp16", action="store_true", help="fp16 weights/activations (GPU); inputs/outputs keep their types")
    parser.add_argument("--int8", action="store_true", help="int8 weights, dynamic quantization (CPU serving: embedded engine, cpu-python); "
                                                             "accuracy change measured by the inference benchmark")
    parser.add_argument("--parity-tolerance", type=float, default=None, metavar="X",
                        help="largest |difference| from PyTorch accepted in probabilities and evidence weights (default 1e-4 for "
                             "fp32, 5e-2 for fp16/int8). The trained CodiEsp model's int8 evidence weights moved by up to 0.24 "
                             "(probabilities 0.02; official MAP -0.0015): --int8 needs about 0.3 there (docs/deploy.md)")
    parser.add_argument("--no-fuse", dest="fuse", action="store_false",
                        help="keep the plain graph (default: fused attention/LayerNorm/GELU operators, checked one Attention node per layer)")
    parser.add_argument("--top-k", type=int, default=ExportOptions.top_k, help="evidence tokens per code computed in the graph (0: probs only)")
    parser.add_argument("--tensorrt", action="store_true", help="enable the TensorRT accelerator block in the GPU config (commented out otherwise)")
    parser.add_argument("--max-batch-size", type=int, default=ServingConfig.max_batch_size, help="Triton max_batch_size (segments)")
    parser.add_argument("--max-queue-delay-us", type=int, default=ServingConfig.max_queue_delay_us, help="dynamic batching delay")
    parser.add_argument("--gpu-instances", type=int, default=ServingConfig.gpu_instances, help="model instances per GPU")
    parser.add_argument("--cpu-threads", type=int, default=ServingConfig.cpu_threads, help="onnxruntime threads (cpu-python)")
    for context in ("negated", "family"):
        parser.add_argument(f"--context-{context}", choices=("keep", "demote", "suppress"), default=getattr(ContextPolicy(), context),
                            help=f"this version's policy for suggestions whose evidence is all {context} (docs/context.md; default %(default)s)")
    parser.add_argument("--site-packages", default="", help="cpu-python: site-packages with numpy<2 + onnxruntime for the stub (default: this venv's)")


def run(args: argparse.Namespace) -> int:
    from trainer.export.repository import export_model

    serving = ServingConfig(max_batch_size=args.max_batch_size, max_queue_delay_us=args.max_queue_delay_us,
                            gpu_instances=args.gpu_instances, cpu_threads=args.cpu_threads, tensorrt=args.tensorrt,
                            site_packages=args.site_packages)
    options = ExportOptions(name=args.name, variants=tuple(args.variant or ExportOptions.variants), fp16=args.fp16,
                            int8=args.int8, fuse=args.fuse, top_k=args.top_k, version=args.version, serving=serving, tolerance=args.parity_tolerance,
                            context_policy=ContextPolicy(negated=args.context_negated, family=args.context_family))
    result = export_model(args.run, args.repository, options)
    print(f"exported {args.run} -> {result.version_dir} ({result.metadata.precision}, {len(result.metadata.labels)} codes, "
          f"evidence top-k {result.metadata.evidence_top_k}) in {result.seconds:.1f} s")
    print(f"parity with PyTorch: {result.parity}")
    if result.fused_ops:
        print("fused operators: " + ", ".join(f"{op} {n}" for op, n in result.fused_ops.items() if n))
    for path in result.configs:
        print(f"config: {path}")
    return 0
