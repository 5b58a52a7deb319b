"""BatchNorm after a convolution is folded into it before QAT (inference semantics)."""

from __future__ import annotations

from edgeship.compress.qat.batchnorm import fold_batchnorm


def test_batchnorm_is_folded_into_the_convolution():
    import torch
    from torch import nn

    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
    m[1].running_mean.uniform_(-1, 1)
    m[1].running_var.uniform_(0.5, 2)
    folded = fold_batchnorm(m)
    assert not any(isinstance(x, nn.BatchNorm2d) for x in folded.modules())
    x = torch.randn(2, 1, 6, 6)
    assert torch.allclose(folded(x), m(x), atol=1e-5)


def test_a_model_without_foldable_batchnorm_comes_back_unchanged():
    from torch import nn

    m = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4)).eval()  # BatchNorm after a Linear: not folded
    assert fold_batchnorm(m) is m
