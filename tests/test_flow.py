import pytest
import torch

from raxels.flow import TASKS, flow_matching_loss, noise_like, noised, sample, task_mask, timestep_schedule


def test_task_masks_follow_the_design_table():
    m = task_mask("estimate", 2, 4, 13)
    assert not m.video.any() and m.raxel.all()
    m = task_mask("generate", 2, 4, 13, cond_video=1)
    assert not m.video[:, 0].any() and m.video[:, 1:].all() and not m.raxel.any()
    m = task_mask("joint", 1, 4, 13, cond_video=1)
    assert not m.video[0, 0] and m.video[0, 1:].all()
    # 13 frames in 4 latents (Wan VAE): latent 0 holds frame 0 alone, so only its camera is given.
    assert m.raxel[0].tolist() == [False] + [True] * 12
    m = task_mask("joint", 1, 4, 13, cond_video=2)
    assert m.raxel[0].tolist() == [False] * 5 + [True] * 8  # latent 1 holds frames 1-4
    m = task_mask("joint", 1, 8, 8, cond_video=2)
    assert m.raxel[0].tolist() == [False, False] + [True] * 6
    m = task_mask("unconditional", 1, 3, 3)
    assert m.video.all() and m.raxel.all()
    with pytest.raises(ValueError):
        task_mask("bogus", 1, 2, 2)
    assert TASKS == ("estimate", "generate", "joint", "unconditional")


class Oracle(torch.nn.Module):
    """The exact velocity towards known clean latents: v = (x_t - x0) / t, for any t > 0."""

    def __init__(self, v0, r0):
        super().__init__()
        self.v0, self.r0, self.calls = v0, r0, 0

    def forward(self, xv, xr, tv, tr):
        self.calls += 1
        tv = tv[:, None, :, None, None].clamp_min(1e-8)
        tr = tr[:, None, :, None, None].clamp_min(1e-8)
        return (xv - self.v0) / tv, (xr - self.r0) / tr


@pytest.mark.parametrize("steps", [1, 2, 5])
@pytest.mark.parametrize("task", ["estimate", "generate", "joint"])
def test_euler_sampler_with_oracle_recovers_clean_latents(task, steps):
    g = torch.Generator().manual_seed(0)
    v0, r0 = torch.randn(2, 4, 3, 2, 2, generator=g), torch.randn(2, 4, 3, 2, 2, generator=g)
    mask = task_mask(task, 2, 3, 3)
    oracle = Oracle(v0, r0)
    # Given latents are passed clean; the masked ones hold garbage that the sampler must ignore.
    gv = torch.where(mask.video[:, None, :, None, None], torch.full_like(v0, 99.0), v0)
    gr = torch.where(mask.raxel[:, None, :, None, None], torch.full_like(r0, 99.0), r0)
    xv, xr = sample(oracle, gv, gr, mask, steps=steps, generator=g)
    assert oracle.calls == steps
    assert torch.allclose(xv, v0, atol=1e-5) and torch.allclose(xr, r0, atol=1e-5)


def test_guidance_one_is_plain_sampling_and_other_scales_run():
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    v0, r0 = torch.randn(1, 2, 2, 2, 2), torch.randn(1, 2, 2, 2, 2)
    mask = task_mask("estimate", 1, 2, 2)
    a = sample(Oracle(v0, r0), v0, r0, mask, 2, generator=g1)
    b = sample(Oracle(v0, r0), v0, r0, mask, 2, generator=g2, guidance=1.0)
    assert torch.equal(a[1], b[1])
    oracle = Oracle(v0, r0)
    sample(oracle, v0, r0, mask, 2, generator=torch.Generator().manual_seed(1), guidance=3.0)
    assert oracle.calls == 4  # conditional + unconditional per step


def test_loss_only_counts_noised_frames():
    v0, r0 = torch.randn(1, 2, 3, 2, 2), torch.randn(1, 2, 3, 2, 2)
    ev, er = torch.randn_like(v0), torch.randn_like(r0)
    mask = task_mask("generate", 1, 3, 3)

    class Fixed(torch.nn.Module):
        def __init__(self, junk_in_clean):
            super().__init__()
            self.junk = junk_in_clean

        def forward(self, xv, xr, tv, tr):
            pv, pr = (ev - v0).clone(), (er - r0) * 0 + self.junk  # exact on video, junk on the clean raxels
            pv[:, :, 0] = self.junk  # junk on the clean input frame
            return pv, pr

    l1, _ = flow_matching_loss(Fixed(5.0), v0, r0, mask, torch.tensor([0.5]), torch.tensor([0.5]), ev, er)
    l2, _ = flow_matching_loss(Fixed(-3.0), v0, r0, mask, torch.tensor([0.5]), torch.tensor([0.5]), ev, er)
    assert l1.item() == 0.0 and l2.item() == 0.0


def test_noised_and_schedule():
    x0, eps = torch.zeros(1, 1, 2, 1, 1), torch.ones(1, 1, 2, 1, 1)
    assert noised(x0, eps, torch.tensor([[0.0, 0.25]])).flatten().tolist() == [0.0, 0.25]
    s = timestep_schedule(4, shift=3.0)
    assert s[0] == 1 and s[-1] == 0 and (s[1:] < s[:-1]).all() and s[2] > 0.5


def test_training_t_covers_the_top_of_the_schedule():
    from raxels.flow import sample_train_t

    t = sample_train_t(20000, torch.Generator().manual_seed(0))
    assert (t >= 0).all() and (t <= 1).all()
    # 2-step sampling starts at t = 1: at least 15% of training noise levels lie above 0.9.
    assert (t > 0.9).double().mean() > 0.15


def test_top_share_redraws_noise_levels_near_one_and_zero_draws_nothing():
    from raxels.flow import sample_train_t

    g0, g1, g2 = (torch.Generator().manual_seed(0) for _ in range(3))
    base = sample_train_t(20000, g0)
    # 0 is the old mixture, with no extra draws: resumed and reproduced runs see the same numbers as before.
    assert torch.equal(sample_train_t(20000, g1, top_share=0.0), base)
    assert torch.equal(torch.rand(3, generator=g0), torch.rand(3, generator=g1))
    pushed = sample_train_t(20000, g2, top_share=0.5)
    above = (base > 0.9).double().mean().item()
    assert abs((pushed > 0.9).double().mean().item() - (0.5 + 0.5 * above)) < 0.02
    assert (pushed >= 0).all() and (pushed <= 1).all()


def test_sampler_runs_where_the_model_is():
    """The 'meta' device stands in for a GPU (this machine has none): a tensor the sampler makes on the CPU fails
    against it. The noise of a CPU generator is drawn on the CPU, so it is the same noise whatever device the
    latents are on (torch refuses a CPU generator for CUDA draws)."""
    x, g = torch.zeros(2, 3, 4), torch.Generator().manual_seed(0)
    assert torch.equal(noise_like(x, g), torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(0)))
    assert noise_like(x.to("meta"), g).device.type == "meta"

    v0, r0 = torch.zeros(1, 4, 3, 2, 2, device="meta"), torch.zeros(1, 4, 3, 2, 2, device="meta")
    mask = task_mask("joint", 1, 3, 3, device="meta")
    v, r = sample(Oracle(v0, r0), v0, r0, mask, 2, generator=torch.Generator().manual_seed(0), guidance=2.0)
    assert v.device.type == r.device.type == "meta" and v.shape == v0.shape
