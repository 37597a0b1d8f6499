import torch

from raxels.train_config import TrainConfig
from raxels.train_steps import draw_step

SHAPES = ((48, 4, 8, 8), (48, 4, 8, 8))


def test_pure_noise_share_sets_that_share_of_raxel_levels_to_one():
    plain = draw_step(TrainConfig(batch_size=2000), 5, SHAPES)
    pure = draw_step(TrainConfig(batch_size=2000, pure_noise_share=0.3), 5, SHAPES)
    ones = pure["t_raxel"] == 1
    assert 0.27 < ones.float().mean() < 0.33
    assert (plain["t_raxel"] < 1).all()  # the mixture itself never gives exactly 1
    # The other samples keep their levels, and the video's are untouched.
    assert torch.equal(pure["t_raxel"][~ones], plain["t_raxel"][~ones])
    assert torch.equal(pure["t_video"], plain["t_video"])
    assert (draw_step(TrainConfig(batch_size=50, pure_noise_share=1.0), 5, SHAPES)["t_raxel"] == 1).all()


def test_a_step_draws_the_same_whoever_draws_it():
    a, b = (draw_step(TrainConfig(batch_size=4, seed=3), 7, SHAPES) for _ in range(2))
    assert a["seeds"] == b["seeds"] and a["tasks"] == b["tasks"]
    assert all(torch.equal(a[k], b[k]) for k in ("t_video", "t_raxel", "eps_video", "eps_raxel"))
