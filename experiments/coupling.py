"""Does the raxel stream read the video? Estimate-only training from scratch on 8-frame 32x32 SynthRooms clips,
evaluated on held-out clips with each clip's own video and with another clip's (a control that a model which
ignores the video scores equally on). Prints one JSON line per evaluation.

Variants (docs/experiments.md's "Probing the coupling" table and paragraph):
  raw     the tiny config as shipped (raxel latents as the codec gives them)
  white   raxel latents whitened per frame index (mean trajectory subtracted, divided by the across-clip spread)
  donly   rotation-only targets: raxels of the cameras with their centres set to 0 (d instead of o + d)
  fine    patch size 1 instead of 2: 8x8 tokens per frame instead of 4x4 (about 5x the compute)
  stem    the video stream's patch embedding preceded by a 3x3x3 convolution over (frames, latent rows, columns),
          so each video token sees its neighbours in the previous and next frame (as Wan VAE latents do)
  t1      every training sample at t = 1 (a plain regression of the x0 that 2-step sampling starts from)
  cnn     not the DiT: a small CNN regressing the last frame's yaw from frames (0, last), a learnability floor
  yaw     the DiT (estimate mask, raxels at t = 1) regressing the same yaw as `cnn` from its pooled raxel output:
          can the transformer on 4x4 tokens per frame read the rotation at all when that is all it is asked?
  cnn-centre   translation's learnability floor: a small CNN regressing the last frame's canonical centre from all
               8 frames stacked as channels (the pixels of every frame meet in its first layer)
  centre       the DiT (estimate mask, raxels pure noise, bf16 autocast) regressing every frame's canonical centre
               through its auxiliary pose head (`pose_readout`), the only loss: can it read translation at all?
  centre-stem  as `centre`, with the model's `video_stem` (a 3x3x3 convolution to 32 channels + GELU)
  centre-ref   as `centre-stem`, but the convolution also sees the first frame's latents beside every frame's
               (channels concatenated): each token compares its frame with the canonical frame pixel by pixel
  centre-pair  as `centre`, with a deeper comparison: each latent frame beside the first through three 3x3
               convolutions (64 channels, GELU) within the frame, added to the plain patch embedding
  centre-motion  as `centre`, with the model's `motion_stem` (32 channels): the same comparison of each frame with
               the first, its tokens added to both streams' embeddings

Options of the translation variants: --plain-head drops the LayerNorm at the pose head's input. With it in place and
this loss alone the raxel stream's pooled state keeps growing (its norm 16 -> 87 in 120 steps, 141 with --demean)
while its variation across clips falls to a quarter of its share, and every clip gets one answer; the shipped model,
trained with the flow loss beside it, does not do this (norm 51, across-clip share 0.39). --demean regresses the
centres minus their mean trajectory; --zero-raxels feeds zeros instead of noise as the raxel input; --flow-weight W
adds the raxel flow-matching loss of the same forward pass (at t = 1, or at the training noise levels with
--random-t); --pooled-every N prints the pose head's input norm and its variation across clips every N steps:

    python experiments/coupling.py centre-motion --clips 1000 --steps 121 --pooled-every 10 [--plain-head | --demean]

    python experiments/coupling.py raw --steps 450 --clips 1600 --batch 8
    python experiments/coupling.py centre --steps 750 --clips 8000 --batch 32 --eval-every 250
    python experiments/coupling.py centre-motion --plain-head --steps 750 --clips 8000 --batch 32 --eval-every 250

Translation variants report, per trajectory kind of 200 held-out clips, how often the last frame's centre has the
right sign along the main axis of motion (x; z for `forward`) and how often its direction is within 15 degrees
(up to sign, as RTA).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch
from torch import nn

from raxels.cameras import Cameras
from raxels.codec import PixelCodec
from raxels.data.batches import HELD_OUT_SEED_START, camera_images, synthrooms_batch
from raxels.aux_pose import CENTRE_SPREAD
from raxels.data.synthrooms import TRAJECTORIES, SynthRoomsConfig
from raxels.eval.pose import pose_metrics
from raxels.flow import flow_matching_loss, noised, sample, sample_train_t, task_mask
from raxels.model.configs import build_model, model_config
from raxels.model.dit import beside_first
from raxels.raxels import raxels_to_cameras

VARIANTS = (
    "raw", "white", "donly", "fine", "stem", "t1", "cnn", "yaw", "cnn-centre", "centre", "centre-stem", "centre-ref",
    "centre-pair", "centre-motion",
)
CLIPS = SynthRoomsConfig(frames=8, height=32, width=32)
HELD_OUT = 80


def last_yaw_deg(c2w: torch.Tensor) -> torch.Tensor:
    """Rotation of the last camera about the world's vertical axis (canonical frame: the first camera's)."""
    return torch.atan2(c2w[:, -1, 0, 2], c2w[:, -1, 2, 2]).rad2deg()


def corr(a: torch.Tensor, b: torch.Tensor) -> float:
    return torch.corrcoef(torch.stack([a.double(), b.double()]))[0, 1].item()


def load(seeds: list[int], rotation_only: bool):
    b = synthrooms_batch(seeds, CLIPS)
    if rotation_only:
        c2w = b.cameras.c2w.clone()
        c2w[..., :3, 3] = 0
        b.camera_images = camera_images(Cameras(b.cameras.K, c2w, CLIPS.height, CLIPS.width)).float()
    return b


def load_pool(n: int, rotation_only: bool, chunk: int = 50):
    batches = [load(list(range(i, min(n, i + chunk))), rotation_only) for i in range(0, n, chunk)]
    held = load(list(range(HELD_OUT_SEED_START, HELD_OUT_SEED_START + HELD_OUT)), rotation_only)
    return batches, held


def add_stem(model) -> None:
    """A 3x3x3 convolution + GELU over (frames, latent rows, columns) before the video patch embedding."""
    pe = model.video_io.patch_embedding
    model.video_io.patch_embedding = nn.Sequential(
        nn.Conv3d(pe.in_channels, 96, 3, padding=1),
        nn.GELU(),
        nn.Conv3d(96, pe.out_channels, pe.kernel_size, pe.stride),
    )


class ReferenceStem(nn.Module):
    """Each latent frame concatenated with the first one, a 3x3x3 convolution + GELU, then the patch embedding."""

    def __init__(self, patchify: nn.Conv3d, channels: int = 32):
        super().__init__()
        self.conv = nn.Conv3d(2 * patchify.in_channels, channels, 3, padding=1)
        self.patchify = nn.Conv3d(channels, patchify.out_channels, patchify.kernel_size, patchify.stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.patchify(nn.functional.gelu(self.conv(beside_first(x))))


class PairStem(nn.Module):
    """Each latent frame concatenated with the first, three 3x3 convolutions + GELU within the frame, patchified and
    added to the plain patch embedding (a residual: the plain path stays as it was)."""

    def __init__(self, patchify: nn.Conv3d, channels: int = 64, layers: int = 3):
        super().__init__()
        convs, c = [], 2 * patchify.in_channels
        for _ in range(layers):
            convs += [nn.Conv3d(c, channels, (1, 3, 3), padding=(0, 1, 1)), nn.GELU()]
            c = channels
        self.body = nn.Sequential(*convs)
        self.patchify = patchify
        self.out = nn.Conv3d(channels, patchify.out_channels, patchify.kernel_size, patchify.stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.patchify(x) + self.out(self.body(beside_first(x)))


class DiTYaw(nn.Module):
    """The tiny DiT in the estimate configuration, its raxel output pooled per channel and frame, then linear."""

    def __init__(self):
        super().__init__()
        self.dit = build_model(model_config("tiny"))
        c = self.dit.config.raxel_in_channels
        self.readout = nn.Linear(c * CLIPS.frames, 1)
        # The DiT's output layer starts at zero (see StreamIO): give it a start here, or no gradient reaches inside.
        nn.init.normal_(self.dit.raxel_io.proj_out.weight, std=0.02)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        B, T = video.shape[0], video.shape[2]
        raxels = torch.zeros(B, self.dit.config.raxel_in_channels, T, *video.shape[3:])
        _, out = self.dit(video, raxels, torch.zeros(B, T), torch.ones(B, T))
        return self.readout(out.mean(dim=(3, 4)).flatten(1))


def small_cnn(in_channels: int, outputs: int) -> nn.Sequential:
    """The learnability floor of the `cnn` variants: 32x32 input, three stride-2 convolutions, a linear readout."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 64, 3, padding=1), nn.GELU(), nn.Conv2d(64, 64, 3, 2, 1), nn.GELU(),
        nn.Conv2d(64, 128, 3, 2, 1), nn.GELU(), nn.Conv2d(128, 128, 3, 2, 1), nn.GELU(),
        nn.Flatten(), nn.Linear(128 * 16, outputs),
    )


def run_regression(args) -> None:
    batches, held = load_pool(args.clips, False)
    codec = PixelCodec(4, "raxel")

    def xy(b):
        if args.variant == "yaw":
            return codec.encode_video(b.frames), last_yaw_deg(b.cameras.c2w) / 30
        return torch.cat([b.frames[:, 0], b.frames[:, -1]], 1), last_yaw_deg(b.cameras.c2w) / 30

    X, Y = map(torch.cat, zip(*[xy(b) for b in batches]))
    Xh, Yh = xy(held)
    net = DiTYaw() if args.variant == "yaw" else small_cnn(6, 1)
    opt = torch.optim.AdamW(net.parameters(), args.lr or (4e-4 if args.variant == "yaw" else 1e-3))
    g = torch.Generator().manual_seed(1)
    t0 = time.time()
    for step in range(args.steps):
        i = torch.randint(0, len(X), (args.batch,), generator=g)
        loss = ((net(X[i])[:, 0] - Y[i]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
            net.eval()
            with torch.no_grad():
                p = net(Xh)[:, 0]
            net.train()
            out = {
                "variant": args.variant,
                "steps": step + 1,
                "samples": (step + 1) * args.batch,
                "train_s": round(time.time() - t0),
                "yaw_corr": round(corr(p, Yh), 3),
                "yaw_mae_deg": round(((p - Yh).abs() * 30).mean().item(), 2),
                "yaw_mae_zero_deg": round((Yh.abs() * 30).mean().item(), 2),
            }
            print(json.dumps(out), flush=True)


def run_dit(args) -> None:
    codec = PixelCodec(4, "raxel")
    batches, held = load_pool(args.clips, args.variant == "donly")
    V = torch.cat([codec.encode_video(b.frames) for b in batches])
    R = torch.cat([codec.encode_raxels(b.camera_images) for b in batches])
    hv, hr = codec.encode_video(held.frames), codec.encode_raxels(held.camera_images)
    if args.variant == "white":
        mu = R.mean(0, keepdim=True)
        sd = (R - mu).std(dim=(0, 1, 3, 4), keepdim=True).clamp_min(1e-3)
    else:
        mu, sd = torch.zeros_like(R[:1]), torch.ones(1, 1, R.shape[2], 1, 1)
    Rn = (R - mu) / sd
    patch = (1, 1, 1) if args.variant == "fine" else (1, 2, 2)
    model = build_model(model_config("tiny", patch_size=patch))
    if args.variant == "stem":
        add_stem(model)
    lr = args.lr or 4e-4
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(1)

    def predict(video: torch.Tensor) -> torch.Tensor:
        """2 denoising steps of the project's sampler, as `estimate_trajectory`."""
        mask = task_mask("estimate", video.shape[0], video.shape[2], hr.shape[2])
        _, x = sample(model, video, torch.zeros_like(hr), mask, 2, generator=torch.Generator().manual_seed(5))
        return x * sd + mu

    def evaluate(done: int, t0: float) -> None:
        out = {"variant": args.variant, "steps": done, "samples": done * args.batch, "train_s": round(time.time() - t0)}
        truth = held.cameras.c2w.double()
        for name, video in (("own", hv), ("swapped", hv.roll(1, 0))):
            r = predict(video)
            out[f"latent_mse_{name}"] = round(((r - hr) ** 2).mean().item(), 4)
            images = codec.decode_raxels(r).clamp(-1, 1).double()
            cams = raxels_to_cameras(images, max_points=256, intrinsics_model="centred")
            pm = pose_metrics(cams.c2w, truth)
            out.update({f"{k}_{name}": round(float(pm[k]), 3) for k in ("RRA@15", "AUC@30", "mean_rot_err_deg")})
            yaw = last_yaw_deg(cams.c2w)
            out[f"yaw_corr_{name}"] = round(corr(yaw, last_yaw_deg(truth)), 3)
            out[f"yaw_abs_pred_{name}"] = round(yaw.abs().mean().item(), 1)
        out["yaw_abs_true"] = round(last_yaw_deg(truth).abs().mean().item(), 1)
        print(json.dumps(out), flush=True)

    model.train()
    t0 = time.time()
    for step in range(args.steps):
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / 50)
        idx = torch.randint(0, V.shape[0], (args.batch,), generator=g)
        v0, r0 = V[idx], Rn[idx]
        mask = task_mask("estimate", args.batch, v0.shape[2], r0.shape[2])
        t = torch.ones(args.batch) if args.variant == "t1" else sample_train_t(args.batch, g)
        eps_v, eps_r = torch.randn(v0.shape, generator=g), torch.randn(r0.shape, generator=g)
        loss, _ = flow_matching_loss(model, v0, r0, mask, torch.zeros(args.batch), t, eps_v, eps_r)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 50 == 0:
            print(step, round(loss.item(), 4), round(time.time() - t0), file=sys.stderr)
        if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
            model.eval()
            evaluate(step + 1, t0)
            model.train()


def translation_scores(pred: torch.Tensor, truth: torch.Tensor, kinds: list[str]) -> dict:
    """Last-frame centres [N, 3] -> per trajectory kind: sign along the main axis of motion, direction < 15 deg."""
    out = {}
    for kind in TRAJECTORIES:
        idx = [i for i, k in enumerate(kinds) if k == kind]
        axis = 2 if kind == "forward" else 0
        p, y = pred[idx].double(), truth[idx].double()
        cos = torch.nn.functional.cosine_similarity(p, y, dim=-1).abs().clamp(max=1)
        out[kind] = {
            "sign": round(((p[:, axis] * y[:, axis]) > 0).double().mean().item(), 2),
            "dir<15": round((torch.acos(cos).rad2deg() < 15).double().mean().item(), 2),
        }
    return out


def run_centre(args) -> None:
    """`cnn-centre` and the `centre*` variants: regress camera centres (canonical, divided by their spread)."""
    dit = args.variant != "cnn-centre"
    codec = PixelCodec(4, "raxel")

    def xy(seeds):
        b = synthrooms_batch(seeds, CLIPS)
        centres = b.cameras.c2w[:, :, :3, 3] / CENTRE_SPREAD
        raxels = codec.encode_raxels(b.camera_images) if args.flow_weight else None
        return (codec.encode_video(b.frames) if dit else b.frames.flatten(1, 2)), centres, b.kinds, raxels

    train = [xy(list(range(i, min(args.clips, i + 100)))) for i in range(0, args.clips, 100)]
    X, Y = torch.cat([x for x, _, _, _ in train]), torch.cat([y for _, y, _, _ in train])
    R = torch.cat([r for _, _, _, r in train]) if args.flow_weight else None
    Xh, Yh, kinds, _ = xy(list(range(HELD_OUT_SEED_START, HELD_OUT_SEED_START + 200)))
    # --demean: the targets' mean trajectory (per frame, over the training clips) subtracted, added back to score.
    mean = Y.mean(0) if args.demean else torch.zeros_like(Y[0])
    g = torch.Generator().manual_seed(1)  # training draws, and the DiT's raxel noise
    if dit:
        net = build_model(model_config(
            "tiny", pose_head=True, video_stem=32 if args.variant == "centre-stem" else 0,
            motion_stem=32 if args.variant == "centre-motion" else 0, pose_head_norm=not args.plain_head,
        ))
        if args.variant == "centre-ref":
            net.video_io.patch_embedding = ReferenceStem(net.video_io.patch_embedding)
        if args.variant == "centre-pair":
            net.video_io.patch_embedding = PairStem(net.video_io.patch_embedding)
        C = net.config.raxel_in_channels

        def predict(v: torch.Tensor, r0: torch.Tensor | None = None):  # [B, T, 3]
            B, T = v.shape[0], v.shape[2]
            # --zero-raxels still draws the noise, so the training draws stay those of the other runs.
            r = torch.randn(B, C, T, *v.shape[3:], generator=g) * (0.0 if args.zero_raxels else 1.0)
            t = torch.ones(B, T)
            if r0 is not None and args.random_t:  # training only: held-out clips are scored from pure noise
                t = sample_train_t(B, g)[:, None].expand(B, T)
            x = r if r0 is None else noised(r0, r, t)
            with torch.autocast("cpu", torch.bfloat16):
                out = net(v, x, torch.zeros(B, T), t, return_pose=True)
            if r0 is None:
                return out[2][..., 6:9].float()
            # --flow-weight: the raxel flow-matching loss of the same forward pass (velocity eps - x0).
            return out[2][..., 6:9].float(), ((out[1].float() - (r - r0)) ** 2).mean()
    else:
        net = small_cnn(3 * CLIPS.frames, 3)

        def predict(v: torch.Tensor) -> torch.Tensor:  # the last frame's centre only
            return net(v)[:, None]

    pooled = {}
    if dit and args.pooled_every:  # the pose head's input: the raxel stream's last hidden state, pooled per frame
        net.pose_readout.register_forward_hook(lambda m, i, o: pooled.__setitem__("last", i[0][:, -1].detach().float()))
    lr = args.lr or (4e-4 if dit else 1e-3)
    opt = torch.optim.AdamW(net.parameters(), lr, weight_decay=0.0)
    t0 = time.time()
    for step in range(args.steps):
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / 50)
        i = torch.randint(0, len(X), (args.batch,), generator=g)
        p, flow = predict(X[i], R[i]) if args.flow_weight else (predict(X[i]), 0.0)
        loss = ((p - (Y[i] - mean)[:, -p.shape[1]:]) ** 2).mean() + args.flow_weight * flow
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        if pooled and step % args.pooled_every == 0:
            f = pooled["last"]  # this training batch's last frames [batch, ray_dim]
            norm = f.norm(dim=-1).mean()
            share = (f.std(0).norm() / norm).item()  # variation across clips, relative to the state's size
            out = {"step": step, "pooled_norm": round(norm.item(), 1), "across_clip_share": round(share, 4)}
            print(json.dumps(out), flush=True)
        if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
            net.eval()
            with torch.no_grad():
                ph = torch.cat([predict(Xh[k : k + 50])[:, -1] for k in range(0, len(Xh), 50)]) + mean[-1]
            net.train()
            out = {"variant": args.variant, "steps": step + 1, "samples": (step + 1) * args.batch}
            out["train_s"] = round(time.time() - t0)
            out.update(translation_scores(ph, Yh[:, -1], kinds))
            # Spread of the predicted sideways motion across clips, relative to the true one (0: one answer for all).
            out["x_spread"] = round((ph[:, 0].std() / Yh[:, -1, 0].std()).item(), 3)
            print(json.dumps(out), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("variant", choices=VARIANTS)
    p.add_argument("--steps", type=int, default=450)
    p.add_argument("--clips", type=int, default=1600, help="training clips (seeds 0..clips-1), rendered once")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=None, help="default 1e-3 for cnn, 4e-4 otherwise")
    p.add_argument("--eval-every", type=int, default=10**9)
    p.add_argument("--demean", action="store_true", help="translation variants: regress centres minus their mean")
    p.add_argument("--plain-head", action="store_true", help="translation variants: no LayerNorm in the pose head")
    p.add_argument("--pooled-every", type=int, default=0, help="DiT translation variants: print the pose head's "
                   "input size and its variation across the batch's clips every N steps")
    p.add_argument("--zero-raxels", action="store_true", help="translation variants: raxel input 0 instead of noise")
    p.add_argument("--flow-weight", type=float, default=0.0, help="DiT translation variants: add the raxel "
                   "flow-matching loss (t = 1, the same forward pass) at this weight beside the centres' loss")
    p.add_argument("--random-t", action="store_true", help="with --flow-weight: train both losses at the "
                   "project's training noise levels (`sample_train_t`) instead of t = 1")
    args = p.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    if args.variant in ("cnn", "yaw"):
        run_regression(args)
    elif args.variant == "cnn-centre" or args.variant.startswith("centre"):
        run_centre(args)
    else:
        run_dit(args)


if __name__ == "__main__":
    main()
