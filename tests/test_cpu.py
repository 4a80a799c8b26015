"""zoo.accel.cpu reads the CPU's vendor and model from /proc/cpuinfo, the first processor's."""

import pytest

from zoo.accel.cpu import cpu_fields, cpu_model, cpu_vendor

AMD = (
    "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel name\t: AMD EPYC 9B14\n"
    "flags\t\t: fpu avx512f\n\n"
    "processor\t: 1\nvendor_id\t: GenuineIntel\nmodel name\t: not the first processor\n"
    "microcode\t: 0x1\n"
)
ARM = "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\n"


@pytest.mark.parametrize(
    ("text", "vendor", "model"),
    [
        (AMD, "AuthenticAMD", "AuthenticAMD: AMD EPYC 9B14"),
        (
            "vendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Processor\n",
            "GenuineIntel",
            "GenuineIntel: Intel(R) Xeon(R) Processor",
        ),
        (ARM, "", None),  # an ARM CPU names no vendor and no model
        (None, "", None),  # no /proc/cpuinfo: macOS, Windows
    ],
)
def test_vendor_and_model_of_the_first_processor(text, vendor, model, tmp_path):
    path = tmp_path / "cpuinfo"
    if text is not None:
        path.write_text(text)
    assert cpu_vendor(str(path)) == vendor
    assert cpu_model(str(path)) == model


def test_fields_stop_at_the_first_processor(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(AMD)
    fields = cpu_fields(str(path))
    assert fields["processor"] == "0" and fields["flags"] == "fpu avx512f"
    assert fields["model name"] == "AMD EPYC 9B14"
    assert "microcode" not in fields  # the second processor's: never read
