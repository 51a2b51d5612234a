"""Input-gradient passes on a CPU: the harness's chunked pass vs one pass over the whole batch.

Same model (the quick protocol's small CNN at its default width, untrained: the cost does not
depend on the weights), same images, the precision the attacks would use here (bfloat16
channels-last where the CPU has AMX or AVX512-BF16, else float32; ``--precision`` forces one).
Prints JSON with milliseconds per image of ``input_gradient`` (which splits batches larger than
``CPU_GRADIENT_CHUNK``) and of a single pass over the whole batch, and their ratio, per batch
size; in bfloat16 also the chunked float32 pass, the peer it replaces, and that ratio.

    python benchmarks/gradient_chunk.py --threads 2 --batches 128 225 500 --repeats 30 [--chunk 128] [--precision fp32]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from bench.attacks import gradient
from bench.attacks.precision import cpu_has_bf16_units, resolve_precision, with_precision
from bench.models.small_cnn import small_cnn


def per_image_ms(model, x, y, repeats: int, chunk: int) -> float:
    saved = gradient.CPU_GRADIENT_CHUNK
    gradient.CPU_GRADIENT_CHUNK = chunk
    try:
        for _ in range(3):  # warm-up
            gradient.input_gradient(model, x, y)
        start = time.perf_counter()
        for _ in range(repeats):
            gradient.input_gradient(model, x, y)
        return (time.perf_counter() - start) / repeats / len(x) * 1e3
    finally:
        gradient.CPU_GRADIENT_CHUNK = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batches", type=int, nargs="+", default=[128, 225, 500])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--chunk", type=int, default=gradient.CPU_GRADIENT_CHUNK, help="chunk size to time (default: the harness's)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto", help="of the gradient passes (default: the harness's choice here)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device("cpu")
    precision = resolve_precision(args.precision, device)

    def frozen(name: str) -> torch.nn.Module:
        model = with_precision(small_cnn(1, 10).eval(), name, device)
        for p in model.parameters():
            p.requires_grad_(False)
        return model

    model = frozen(precision)
    fp32 = frozen("fp32") if precision != "fp32" else None
    rows = []
    for n in args.batches:
        x, y = torch.rand(n, 1, 28, 28), torch.randint(0, 10, (n,))
        chunked = per_image_ms(model, x, y, args.repeats, args.chunk)
        whole = per_image_ms(model, x, y, args.repeats, n)
        row = {"batch": n, "chunked_ms_per_image": round(chunked, 4), "one_pass_ms_per_image": round(whole, 4),
               "one_pass_over_chunked": round(whole / chunked, 2)}
        if fp32 is not None:
            peer = per_image_ms(fp32, x, y, args.repeats, args.chunk)
            row |= {"fp32_chunked_ms_per_image": round(peer, 4), "fp32_over_chunked": round(peer / chunked, 2)}
        rows.append(row)
    print(json.dumps({"precision": precision, "threads": args.threads, "chunk": args.chunk,
                      "cpu_bf16_units": cpu_has_bf16_units(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
