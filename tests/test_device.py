import pytest
import torch

from raxels.device import cpu_has_bf16, resolve_device, resolve_precision


def test_precision_resolution():
    assert resolve_precision("fp32") == "fp32" and resolve_precision("bf16") == "bf16"
    assert resolve_precision("auto", "cuda") == "bf16"
    assert resolve_precision("auto", "cpu") == ("bf16" if cpu_has_bf16() else "fp32")
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fp8")


def test_device_resolution():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        resolve_device("gpu")
    with pytest.raises(ValueError, match="CUDA GPUs"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")
