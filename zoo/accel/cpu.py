"""What the CPU is, as Linux names it in `/proc/cpuinfo`: its vendor and model.

Some speed-ups depend on it: MKL, which PyTorch multiplies with on a CPU, tunes
its kernels for Intel's processors and took twice oneDNN's time on an AMD one
([`zoo.accel.torch_dense`][]). The benchmark records it beside its figures,
since the same machine kind has been an AMD EPYC one day and an Intel Xeon the
next (BENCHMARKS.md, "Issue 32, 2026-12-08"). Imports nothing but the standard
library.
"""

from __future__ import annotations

__all__ = ["cpu_fields", "cpu_model", "cpu_vendor"]


def cpu_fields(cpuinfo="/proc/cpuinfo"):
    """The first processor's `key: value` lines of `cpuinfo` as a dict; `{}` where the
    file cannot be read (another OS)."""
    fields = {}
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as info:
            for line in info:
                if not line.strip():  # the blank line after the first processor
                    break
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        return {}
    return fields


def cpu_vendor(cpuinfo="/proc/cpuinfo"):
    """`"GenuineIntel"`, `"AuthenticAMD"`, ..., or `""` where `cpuinfo` names none (an
    ARM CPU) or cannot be read."""
    return cpu_fields(cpuinfo).get("vendor_id", "")


def cpu_model(cpuinfo="/proc/cpuinfo"):
    """`"VENDOR: MODEL NAME"` (either part alone where only one is named), or `None`."""
    fields = cpu_fields(cpuinfo)
    named = [fields[key] for key in ("vendor_id", "model name") if fields.get(key)]
    return ": ".join(named) or None
