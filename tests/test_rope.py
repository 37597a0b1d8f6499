import torch

from raxels.model.rope import apply_rope, axis_dims, grid_positions, rope_freqs


def test_apply_rope_rotates_each_channel_pair_by_its_angle():
    pos = grid_positions(torch.arange(3), torch.arange(2), torch.arange(4))
    x = torch.randn(2, pos.shape[0], 3, 12)
    out = apply_rope(x, rope_freqs(pos, 12))
    # Explicit rotation of the pairs (x0, x1), angles from the axis split (t, h, w).
    angles = []
    for axis, dim in enumerate(axis_dims(12)):
        inv = 1.0 / 10000.0 ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)
        angles.append(pos[:, axis : axis + 1] * inv[None])
    a = torch.cat(angles, -1).float()[None, :, None, :]
    x0, x1 = x[..., 0::2], x[..., 1::2]
    ref = torch.stack([x0 * a.cos() - x1 * a.sin(), x0 * a.sin() + x1 * a.cos()], -1).flatten(-2)
    assert torch.allclose(out, ref, atol=1e-5)
    assert torch.allclose(out.norm(dim=-1), x.norm(dim=-1), atol=1e-5)


def test_rope_dot_products_depend_on_relative_position_only():
    q, k = torch.randn(1, 1, 1, 24), torch.randn(1, 1, 1, 24)

    def score(pq, pk):
        fq = rope_freqs(torch.tensor([pq], dtype=torch.float64), 24)
        fk = rope_freqs(torch.tensor([pk], dtype=torch.float64), 24)
        return (apply_rope(q, fq) * apply_rope(k, fk)).sum()

    a = score([1.0, 2.0, 3.0], [2.0, 0.5, 3.0])
    b = score([4.0, 7.0, -1.0], [5.0, 5.5, -1.0])
    c = score([4.0, 7.0, -1.0], [5.0, 5.0, -1.0])
    assert torch.allclose(a, b, atol=1e-4)
    assert not torch.allclose(a, c, atol=1e-3)


def test_apply_rope_keeps_bfloat16():
    pos = grid_positions(torch.arange(2), torch.arange(2), torch.arange(2))
    x = torch.randn(1, 8, 2, 6, dtype=torch.bfloat16)
    assert apply_rope(x, rope_freqs(pos, 6)).dtype == torch.bfloat16


def test_raxel_frames_sit_at_the_causal_vae_latent_that_holds_their_frame():
    from raxels.model.rope import causal_time_axis, resampled_axis

    # Wan VAE: 17 frames -> 5 latents; latent 0 holds frame 0, latent j frames 4j-3 .. 4j around position j.
    pos = causal_time_axis(17, 5)
    assert pos[0] == 0 and torch.allclose(pos[1:5], torch.tensor([0.625, 0.875, 1.125, 1.375], dtype=pos.dtype))
    assert torch.allclose(pos[1:].view(4, 4).mean(1), torch.arange(1, 5, dtype=pos.dtype))
    # Without temporal compression (the pixel codec) the same positions as before, exactly.
    for n in range(1, 20):
        assert torch.equal(causal_time_axis(n, n), resampled_axis(n, n))
    assert causal_time_axis(3, 1).tolist() == [0.0, 0.0, 0.0]
