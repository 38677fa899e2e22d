import math

import pytest
import torch

from aofl import angles


def deg(x):
    return float(angles.to_degrees(x.detach()))


@pytest.mark.parametrize(
    "a,b,expected",
    [
        ([1.0, 0.0], [1.0, 0.0], 0.0),
        ([1.0, 0.0], [0.0, 2.0], 90.0),
        ([1.0, 0.0], [-3.0, 0.0], 180.0),
        ([1.0, 1.0], [1.0, 0.0], 45.0),
        ([1.0, 0.0, 0.0], [-0.5, math.sqrt(3) / 2, 0.0], 120.0),
    ],
)
def test_hand_computed_angles(a, b, expected):
    assert deg(
        angles.angle(torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64))
    ) == pytest.approx(expected, abs=1e-5)


def test_random_angles_match_acos_of_cosine():
    g = torch.Generator().manual_seed(0)
    a, b = (
        torch.randn(100, 16, generator=g, dtype=torch.float64),
        torch.randn(100, 16, generator=g, dtype=torch.float64),
    )
    cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))
    assert torch.allclose(angles.angle(a, b), torch.acos(cos), atol=1e-9)
    assert torch.allclose(angles.cosine(a, b), cos, atol=1e-12)


def test_angle_is_accurate_near_zero_where_acos_is_not():
    a = torch.tensor([1.0, 0.0], dtype=torch.float64)
    b = torch.tensor([1.0, 1e-9], dtype=torch.float64)
    assert float(angles.angle(a, b)) == pytest.approx(1e-9, rel=1e-3)


@pytest.mark.parametrize("rad", [1e-3, 0.5, math.pi / 2, math.pi - 1e-3])
def test_gradcheck_near_extremes(rad):
    a = torch.tensor([[1.0, 0.0, 0.2]], dtype=torch.float64, requires_grad=True)
    b = torch.tensor(
        [[math.cos(rad), math.sin(rad), 0.2 * math.cos(rad)]], dtype=torch.float64, requires_grad=True
    )
    assert torch.autograd.gradcheck(angles.angle, (a, b), eps=1e-7, atol=1e-5)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_gradient_finite_at_exactly_0_and_180(sign):
    a = torch.tensor([[0.3, -1.2, 2.0]], dtype=torch.float64, requires_grad=True)
    b = (sign * 2.5 * a.detach()).clone().requires_grad_(True)
    out = angles.angle(a, b)
    out.sum().backward()
    assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()
    assert deg(out) == pytest.approx(0.0 if sign > 0 else 180.0, abs=1e-4)


def test_zero_vector_has_finite_angle_and_gradient():
    a = torch.zeros(1, 4, requires_grad=True)
    b = torch.ones(1, 4, requires_grad=True)
    out = angles.angle(a, b)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(a.grad).all()


def test_phi_averages_over_other_modalities():
    g = {"a": torch.tensor([[1.0, 0.0]]), "t": torch.tensor([[0.0, 1.0]]), "v": torch.tensor([[1.0, 1.0]])}
    phi = angles.phi(g)
    assert deg(phi["a"]) == pytest.approx((90 + 45) / 2, abs=1e-4)
    assert deg(phi["t"]) == pytest.approx((90 + 45) / 2, abs=1e-4)
    assert deg(phi["v"]) == pytest.approx(45.0, abs=1e-4)
    assert set(angles.phi_pairs(g)) == {("a", "t"), ("a", "v"), ("t", "v")}


def test_to_degrees_keeps_the_kind_of_its_input():
    import numpy as np

    t = angles.to_degrees(torch.tensor([math.pi, math.pi / 2]))
    assert isinstance(t, torch.Tensor) and t.tolist() == pytest.approx([180.0, 90.0])
    a = angles.to_degrees(np.array([math.pi / 4]))
    assert isinstance(a, np.ndarray) and a.tolist() == pytest.approx([45.0])
    assert angles.to_degrees(math.pi / 3) == pytest.approx(60.0)
