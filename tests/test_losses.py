"""Losses against independent float64 numpy loops written from the spec's formulas (not from the code)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from benchmark.losses import cmc_loss, cmkm_loss, connectivity, infonce_queue, mine_topk, nt_xent, pairwise_cmc


def _unit(z: np.ndarray) -> np.ndarray:
    return z / np.linalg.norm(z, axis=1, keepdims=True)


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.tensor(a, dtype=torch.float64)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def test_nt_xent_matches_loop(rng):
    n, tau = 4, 0.3
    z1, z2 = rng.normal(size=(n, 5)), rng.normal(size=(n, 5))
    z = _unit(np.concatenate([z1, z2]))
    total = 0.0
    for a in range(2 * n):
        pos = (a + n) % (2 * n)
        den = sum(math.exp(z[a] @ z[b] / tau) for b in range(2 * n) if b != a)
        total += -math.log(math.exp(z[a] @ z[pos] / tau) / den)
    assert nt_xent(_t(z1), _t(z2), tau).item() == pytest.approx(total / (2 * n), abs=1e-12)


def test_nt_xent_perfect_views_hand_value():
    # two orthogonal samples, identical views: each row has 1 positive (cos 1) and 2 negatives (cos 0)
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    expected = -math.log(math.e / (math.e + 2.0))  # tau = 1
    assert nt_xent(z, z.clone(), 1.0).item() == pytest.approx(expected, abs=1e-12)


def test_cmc_matches_loop(rng):
    n, tau = 5, 0.1
    za, zb = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
    ua, ub = _unit(za), _unit(zb)
    c = ua @ ub.T / tau
    rows = [-(c[i, i] - math.log(np.exp(c[i]).sum())) for i in range(n)]
    cols = [-(c[i, i] - math.log(np.exp(c[:, i]).sum())) for i in range(n)]
    expected = (sum(rows) + sum(cols)) / (2 * n)
    assert cmc_loss(_t(za), _t(zb), tau).item() == pytest.approx(expected, abs=1e-12)


def test_pairwise_cmc_sums_pairs(rng):
    z = {m: _t(rng.normal(size=(4, 3))) for m in "abc"}
    expected = cmc_loss(z["a"], z["b"], 0.2) + cmc_loss(z["a"], z["c"], 0.2) + cmc_loss(z["b"], z["c"], 0.2)
    assert pairwise_cmc(z, 0.2).item() == pytest.approx(expected.item(), abs=1e-12)


def test_cmkm_without_mining_and_intra_is_cmc(rng):
    za, zb = _t(rng.normal(size=(6, 4))), _t(rng.normal(size=(6, 4)))
    plain = cmkm_loss(za, zb, None, None, 0.1, intra=False, mining=False)
    assert abs(plain.item() - cmc_loss(za, zb, 0.1).item()) < 1e-12


def test_mine_topk_on_constructed_features():
    # 0 ~ 1, 2 ~ 3, 4 closest to 3; self is never chosen while a positive similarity exists
    h = torch.tensor([[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.0, 1.0, 0.0], [0.0, 0.9, 0.2], [0.0, 0.5, 1.0]])
    assert mine_topk(h, 1)[:, 0].tolist() == [1, 0, 3, 2, 3]
    assert sorted(mine_topk(h, 2)[4].tolist()) == [2, 3]
    # the reference's edge case: a row whose other similarities are all negative mines itself (cos - 1 = 0)
    h2 = torch.tensor([[1.0, 0.0], [-1.0, 0.1], [-1.0, -0.1]])
    assert mine_topk(h2, 1)[0, 0].item() == 0
    with pytest.raises(ValueError, match="between 1 and"):
        mine_topk(h, 5)


def test_connectivity_is_column_mean_of_cosines():
    h = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    s = 1 / math.sqrt(2)
    assert connectivity(h).tolist() == pytest.approx([(1 + 0 + s) / 3, (0 + 1 + s) / 3, (s + s + 1) / 3])


def _cmkm_loop(zi, zs, p_i, p_s, tau, lam, intra_scale, intra=True, mining=True, symmetric=False,
               conn=None, gamma=None, scale=None):
    """Spec 1.4/1.5 written per anchor: P^I = p_i (inertial-mined), P^S = p_s (skeleton-mined)."""
    n = len(zi)
    ui, us = _unit(zi), _unit(zs)
    if not mining:
        p_i = p_s = [set() for _ in range(n)]
    if symmetric:
        p_i = p_s = [set(a) | set(b) for a, b in zip(p_i, p_s)]
    pruned = {"i": set(), "s": set()}
    if gamma is not None:
        pruned = {m: {j for j in range(n) if conn[m][j] > gamma} for m in "is"}
    losses = []
    for a_mod, ua, ub, own, other, o in (("i", ui, us, p_i, p_s, "s"), ("s", us, ui, p_s, p_i, "i")):
        for i in range(n):
            cross_pos = {i} | set(other[i])
            pos = sum(math.exp(ua[i] @ ub[j] / tau) for j in cross_pos)
            neg = sum(math.exp(ua[i] @ ub[j] / tau) for j in range(n) if j not in cross_pos and j not in pruned[o])
            if intra:
                if mining:
                    pos += sum(math.exp(intra_scale * (ua[i] @ ua[j])) for j in own[i])
                neg += lam * sum(math.exp(intra_scale * (ua[i] @ ua[j])) for j in range(n)
                                 if j != i and j not in own[i] and j not in pruned[a_mod])
            w = math.exp(scale * conn[a_mod][i]) if scale is not None else 1.0
            losses.append(-w * math.log(pos / (pos + neg)))
    return sum(losses) / (2 * n)


# mined neighbours (k = 1) chosen by hand: anchor 2's skeleton neighbour is itself (the coincidence case)
P_I = [[1], [0], [3], [2], [3]]
P_S = [[2], [3], [2], [1], [0]]


@pytest.mark.parametrize("intra_temperature,scale", [("none", 1.0), ("tau", 1 / 0.1)])
def test_cmkm_k1_hand_computed(rng, intra_temperature, scale):
    zi, zs = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    got = cmkm_loss(_t(zi), _t(zs), torch.tensor(P_I), torch.tensor(P_S), 0.1, lam=1.0,
                    intra_temperature=intra_temperature)
    expected = _cmkm_loop(zi, zs, P_I, P_S, 0.1, 1.0, scale)
    assert got.item() == pytest.approx(expected, abs=1e-10)


def test_cmkm_k1_tiny_batch_closed_form():
    # N = 2, identical orthogonal embeddings in both modalities, each mines the other sample, tau = 1:
    # inertial anchor 0: Pos = e^1 (own pair) + e^0 (mined cross) + e^0 (mined intra); Neg = 0.
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    mined = torch.tensor([[1], [0]])
    assert cmkm_loss(z, z, mined, mined, 1.0).item() == pytest.approx(0.0, abs=1e-12)
    # without mining: Pos = e, Neg = e^0 (cross) + lam * e^0 (intra)
    lam = 0.5
    expected = -math.log(math.e / (math.e + 1 + lam))
    assert cmkm_loss(z, z, None, None, 1.0, lam=lam, mining=False).item() == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("options", [
    dict(intra=False), dict(mining=False), dict(symmetric=True), dict(lam=0.3), dict(lam=0.0),
    dict(prune=True), dict(weighting=True), dict(prune=True, weighting=True, symmetric=True),
])
def test_cmkm_options_match_loop(rng, options):
    zi, zs = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    conn = {"i": rng.uniform(0.3, 0.9, 5), "s": rng.uniform(0.3, 0.9, 5)}
    gamma, scale = 0.6, 0.25
    kw = dict(intra=options.get("intra", True), mining=options.get("mining", True),
              symmetric=options.get("symmetric", False))
    lam = options.get("lam", 1.0)
    got = cmkm_loss(
        _t(zi), _t(zs), torch.tensor(P_I), torch.tensor(P_S), 0.1, lam=lam, **kw,
        prune=(_t(conn["i"]), _t(conn["s"]), gamma) if options.get("prune") else None,
        weighting=(_t(conn["i"]), _t(conn["s"]), scale) if options.get("weighting") else None,
    )
    expected = _cmkm_loop(zi, zs, P_I, P_S, 0.1, lam, 1.0, conn=conn, **kw,
                          gamma=gamma if options.get("prune") else None,
                          scale=scale if options.get("weighting") else None)
    assert got.item() == pytest.approx(expected, abs=1e-10)


def test_cmkm_rejects_bad_options(rng):
    z = _t(rng.normal(size=(3, 2)))
    with pytest.raises(ValueError, match="intra_temperature"):
        cmkm_loss(z, z, None, None, 0.1, intra_temperature="bogus", mining=False)
    with pytest.raises(ValueError, match="mined_i"):
        cmkm_loss(z, z, None, None, 0.1)


def test_infonce_queue_matches_loop_with_exclusion(rng):
    b, k, tau = 3, 4, 0.2
    q, key = rng.normal(size=(b, 5)), rng.normal(size=(b, 5))
    queue = _unit(rng.normal(size=(k, 5)))
    exclude = np.zeros((b, k), dtype=bool)
    exclude[1, 2] = exclude[2, 0] = True
    uq, uk = _unit(q), _unit(key)
    total = 0.0
    for i in range(b):
        pos = math.exp(uq[i] @ uk[i] / tau)
        neg = sum(math.exp(uq[i] @ queue[j] / tau) for j in range(k) if not exclude[i, j])
        total += -math.log(pos / (pos + neg))
    got = infonce_queue(_t(q), _t(key), _t(queue), tau, exclude=torch.tensor(exclude))
    assert got.item() == pytest.approx(total / b, abs=1e-12)


def test_losses_stay_float32_under_bf16_autocast(rng):
    z1, z2 = torch.tensor(rng.normal(size=(8, 16)), dtype=torch.float32), torch.tensor(rng.normal(size=(8, 16)),
                                                                                      dtype=torch.float32)
    ref = nt_xent(z1, z2, 0.05)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = nt_xent(z1, z2, 0.05)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(ref.item(), rel=1e-6)
