import math

import pytest
import torch

from aofl import angles, losses


def _rand(n=12, d=5, m=("a", "t", "v"), seed=0):
    g = torch.Generator().manual_seed(seed)
    feats = {k: torch.randn(n, d, generator=g, dtype=torch.float64) for k in m}
    labels = torch.randint(0, 3, (n,), generator=g)
    return feats, labels


def cen_reference(shared, labels, tau):
    """Loop-by-loop L_CEN from its definition."""
    names = list(shared)
    n = len(labels)
    terms = []
    for s in names:
        for m in names:
            if s == m:
                continue
            pair = []
            for i in range(n):
                anchor = shared[s][i]
                pos = math.exp(float(angles.cosine(anchor, shared[m][i])) / tau)
                neg = 0.0
                for k in names:
                    for j in range(n):
                        if j != i and labels[j] != labels[i]:
                            neg += math.exp(float(angles.cosine(anchor, shared[k][j])) / tau)
                pair.append(-math.log(pos / (pos + neg)))
            terms.append(sum(pair) / n)
    return sum(terms) / len(terms)


def test_cen_matches_reference():
    feats, labels = _rand()
    assert float(losses.cen_loss(feats, labels, tau=0.5)) == pytest.approx(
        cen_reference(feats, labels, 0.5), rel=1e-9
    )


def test_cen_ignores_same_label_negatives():
    feats, labels = _rand(n=6)
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    base = float(losses.cen_loss(feats, labels, 0.3))
    moved = {k: v.clone() for k, v in feats.items()}
    # utterance 1 shares label 0 with anchor 0: moving it must change nothing for anchor 0's terms,
    # so compare against the reference with all same-label others removed from the denominator
    moved["a"][1] = -moved["a"][0] * 10  # a same-label other pointing anywhere
    ref_moved = cen_reference(moved, labels, 0.3)
    assert float(losses.cen_loss(moved, labels, 0.3)) == pytest.approx(ref_moved, rel=1e-9)
    # with a single class there are no negatives at all: loss is exactly 0
    assert float(losses.cen_loss(feats, torch.zeros(6, dtype=torch.long), 0.3)) == pytest.approx(
        0.0, abs=1e-12
    )
    assert base > 0


def test_cen_same_label_sample_does_not_affect_anchor():
    # two utterances with the same label: anchor 0's loss only depends on its positives and
    # different-label negatives; put a different-label utterance 2 in so negatives exist
    g = {
        "a": torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64),
        "t": torch.tensor([[1.0, 0.1], [0.0, 1.0], [-1.0, 0.2]], dtype=torch.float64),
    }
    labels = torch.tensor([0, 0, 1])
    g2 = {k: v.clone() for k, v in g.items()}
    g2["a"][1] = torch.tensor([1.0, 0.05])  # same label as anchor 0, now very close to it
    g2["t"][1] = torch.tensor([1.0, 0.05])
    l1 = cen_reference(g, labels, 0.2)
    l2 = cen_reference(g2, labels, 0.2)

    # the loss of utterance 0 and 2 terms only; utterance 1 terms change, so compare per-anchor
    def anchor0(feats):
        pos = math.exp(float(angles.cosine(feats["a"][0], feats["t"][0])) / 0.2)
        neg = sum(math.exp(float(angles.cosine(feats["a"][0], feats[k][2])) / 0.2) for k in ("a", "t"))
        return -math.log(pos / (pos + neg))

    assert anchor0(g) == pytest.approx(anchor0(g2))
    assert l1 != l2  # utterance 1's own terms did change
    # and the vectorised loss equals the reference in both cases
    assert float(losses.cen_loss(g2, labels, 0.2)) == pytest.approx(l2, rel=1e-9)


def test_aac_and_csr_match_reference():
    feats, _ = _rand()
    g, h = feats["a"], feats["t"]
    th = angles.theta(g, h)
    alpha = torch.tensor(0.7, dtype=torch.float64)
    ref = sum((float(angles.angle(g[i], h[i])) - 0.7) ** 2 for i in range(len(g))) / len(g)
    assert float(losses.aac_loss(th, alpha)) == pytest.approx(ref, rel=1e-9)
    ph = angles.phi({"a": feats["a"], "t": feats["t"], "v": feats["v"]})["a"]
    ref = sum(max(0.0, math.cos(float(th[i])) - math.cos(float(ph[i])) + 0.1) for i in range(len(g))) / len(g)
    assert float(losses.csr_loss(th, ph, 0.1)) == pytest.approx(ref, rel=1e-9)


def test_csr_zero_when_theta_exceeds_phi_by_margin():
    th = torch.full((4,), math.radians(100))
    ph = torch.full((4,), math.radians(30))
    assert float(losses.csr_loss(th, ph, delta=0.1)) == 0.0
    assert float(losses.csr_loss(ph, th, delta=0.1)) > 0.0


def test_orthogonal_loss_zero_at_90():
    assert float(losses.orthogonal_loss(torch.full((3,), math.pi / 2))) == pytest.approx(0.0, abs=1e-12)


def test_loss_gradients_finite_with_parallel_features():
    g = torch.randn(8, 4, dtype=torch.float64, requires_grad=True)
    h = (2 * g).detach().requires_grad_(True)  # theta = 0 exactly
    other = (-g).detach().requires_grad_(True)  # phi = 180 exactly
    labels = torch.tensor([0, 1] * 4)
    th = angles.theta(g, h)
    ph = angles.phi({"a": g, "t": other})["a"]
    total = (
        losses.aac_loss(th, torch.tensor(0.5, dtype=torch.float64))
        + losses.csr_loss(th, ph)
        + losses.cen_loss({"a": g, "t": other}, labels)
    )
    total.backward()
    for t in (g, h, other):
        assert torch.isfinite(t.grad).all()


def test_cen_gradcheck_small_doubles():
    feats, labels = _rand(n=4, d=3, m=("a", "t"))
    feats = {k: v.requires_grad_(True) for k, v in feats.items()}

    def fn(a, t):
        return losses.cen_loss({"a": a, "t": t}, labels, 0.5)

    assert torch.autograd.gradcheck(fn, (feats["a"], feats["t"]))


@pytest.mark.parametrize("tau", [0.1, 0.5, 0.02])  # 0.02: below the fast path's range, the reference runs
def test_fast_cen_matches_autograd_reference_in_value_and_gradient(tau):
    gen = torch.Generator().manual_seed(3)
    feats = {k: torch.randn(40, 8, generator=gen, dtype=torch.float64, requires_grad=True) for k in "atv"}
    labels = torch.randint(0, 4, (40,), generator=gen)
    labels[:5] = 0  # some anchors share a label with several others
    fast = losses.cen_loss(feats, labels, tau)
    ref = losses.cen_loss_reference(feats, labels, tau)
    assert fast.item() == pytest.approx(ref.item(), rel=1e-10)
    g_fast = torch.autograd.grad(fast, list(feats.values()))
    g_ref = torch.autograd.grad(ref, list(feats.values()))
    for a, b in zip(g_fast, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-12)


def test_fast_cen_float32_stays_finite_at_both_ends():
    # identical shared features (every similarity at +1/tau) and opposite ones (-1/tau)
    g = torch.ones(6, 4)
    labels = torch.tensor([0, 1, 0, 1, 2, 2])
    for other in (g, -g):
        feats = {"a": g.clone().requires_grad_(True), "t": other.clone().requires_grad_(True)}
        loss = losses.cen_loss(feats, labels, 0.05)
        loss.backward()
        assert torch.isfinite(loss) and all(torch.isfinite(f.grad).all() for f in feats.values())
