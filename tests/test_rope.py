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
