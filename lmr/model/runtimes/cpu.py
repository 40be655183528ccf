"""What this CPU can do, as the runtimes need to know it: feature flags, native bfloat16, the int8 kernel."""

from __future__ import annotations

from dataclasses import dataclass


def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags (Linux ``/proc/cpuinfo``; empty where it cannot be read)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 dot products natively (Linux: AVX512-BF16 or AMX-BF16 flags)."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


@dataclass(frozen=True)
class Int8Kernel:
    """How the int8 runtimes' matrix products run: the torch quantised engine that packs the weights
    (the packing decides the kernel) and whether activations are cut to 7 bits.

    ``reduce_range`` exists for CPUs without VNNI, whose u8 x s8 instruction (AVX2's ``vpmaddubsw``)
    sums pairs of products in int16 and saturates on full-range activations; VNNI and AMX sum in
    int32, so there the full 8 bits are safe and halve the activations' rounding error.
    ``onednn`` runs on AMX tiles where the CPU has them (2-3x ``fbgemm``'s AVX512-VNNI kernel per layer
    for the MiniLM's shapes, the same numbers); elsewhere ``fbgemm``. Measured: docs/inference.md.
    """

    engine: str = "fbgemm"
    reduce_range: bool = True

    @classmethod
    def for_cpu(cls, flags: frozenset[str] | None = None) -> Int8Kernel:
        """The kernel for a CPU with these flags (default: this CPU's)."""
        import torch

        flags = cpu_flags() if flags is None else flags
        vnni = bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8"})
        amx = "amx_int8" in flags and "onednn" in torch.backends.quantized.supported_engines
        return cls(engine="onednn" if amx else "fbgemm", reduce_range=not vnni)

    def __str__(self) -> str:
        return f"{self.engine}, {7 if self.reduce_range else 8}-bit activations"
