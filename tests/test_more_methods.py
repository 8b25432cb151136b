"""BYOL, Barlow Twins, VICReg, SICL, frozen-encoder supervised fusion and the random-init floor: losses against
hand-computed values (more_methods_spec.md section 6) and float64 loops, n-modality averaging, and training."""
from __future__ import annotations

import math
from dataclasses import replace
from itertools import combinations

import numpy as np
import pytest
import torch

from benchmark.checks import check_method
from benchmark.contracts import DataInfo
from benchmark.data import load_dataset
from benchmark.losses import (
    barlow_twins,
    barlow_twins_multi,
    byol_loss,
    byol_momentum,
    nt_xent,
    sicl_loss,
    vicreg,
)
from benchmark.plugins import load_plugins
from benchmark.pretrain import build_method, pretrain
from benchmark.registry import METHODS
from benchmark.runner import plan_suite
from benchmark.suites import get_suite
from tests.fixture_datasets import registered

load_plugins()
D = torch.float64
A = torch.tensor([[1.0, 1], [-1, 1], [1, -1], [-1, -1]], dtype=D)
Q = torch.tensor([[1.0, 1], [-1, -1], [1, 1], [-1, -1]], dtype=D)
ZERO = torch.zeros(4, 2, dtype=D)
NEW = ("byol", "byol_mm", "barlow_twins", "barlow_twins_mm", "vicreg", "vicreg_mm", "sicl", "sicl_mm",
       "supervised_fusion", "random_init")


# -- SICL (spec table S1-S5) -----------------------------------------------------------------------------------
def test_sicl_hand_values():
    z = torch.tensor([[1.0, 0], [0, 1]], dtype=D)
    assert sicl_loss([z, z], torch.tensor([1, 2]), 1.0).item() == pytest.approx(0.42891, abs=1e-5)
    assert sicl_loss([z, z], torch.tensor([1, 2]), 0.1).item() == pytest.approx(-9.30676, abs=1e-5)
    same = torch.tensor([[1.0, 0]] * 3, dtype=D)
    assert sicl_loss([same, same], torch.tensor([1, 1, 2]), 0.1).item() == pytest.approx(1.17310, abs=1e-5)
    assert sicl_loss([z, z], torch.tensor([1, 2]), 1.0, labels=torch.tensor([0, 0])).item() == \
        pytest.approx(1.09557, abs=1e-5)
    assert nt_xent(z, z, 1.0).item() == pytest.approx(math.log(1 + 2 / math.e), abs=1e-6)  # the spec's contrast


def test_sicl_one_subject_batch_raises():
    z = torch.tensor([[1.0, 0], [0, 1]], dtype=D)
    with pytest.raises(ValueError, match="at least two subjects"):
        sicl_loss([z, z], torch.tensor([3, 3]), 1.0)


def _sicl_loop(views, subjects, tau, tau_plus):
    """The spec's formula, row by row in float64 (N = n (B - 1))."""
    z = torch.nn.functional.normalize(torch.cat(views).double(), dim=1)
    rows, b = z.shape[0], views[0].shape[0]
    subj = list(subjects.tolist()) * len(views)
    sim = (z @ z.T) / tau
    s = [[float(sim[r, k] - sim[r].max()) for k in range(rows)] for r in range(rows)]
    pos = [[k for k in range(rows) if k != r and k % b == r % b] for r in range(rows)]
    big_n = len(views) * (b - 1)
    pi = math.exp(sum(s[r][k] for r in range(rows) for k in pos[r]))
    ng = []
    for r in range(rows):
        g = math.log(sum(math.exp(s[r][k]) for k in range(rows) if k != r and subj[k] == subj[r]))
        ng.append(max((g - tau_plus * big_n * pi) / (1 - tau_plus), big_n * math.exp(-1 / tau)))
    total = 0.0
    for r in range(rows):
        log_d = math.log(sum(math.exp(s[r][k]) for k in range(rows) if subj[k] != subj[r]))
        total += log_d - sum(s[r][k] - ng[k] for k in pos[r]) / len(pos[r])
    return total / rows


@pytest.mark.parametrize("n_views", [2, 3])
def test_sicl_matches_float64_loop(n_views):
    gen = torch.Generator().manual_seed(0)
    views = [torch.randn(6, 5, generator=gen, dtype=D) for _ in range(n_views)]
    subjects = torch.tensor([1, 1, 2, 2, 3, 1])
    got = sicl_loss(views, subjects, 0.5, 0.2).item()
    assert got == pytest.approx(_sicl_loop(views, subjects, 0.5, 0.2), rel=1e-9)


# -- Barlow Twins (B1-B5) and VICReg (V1-V5) ------------------------------------------------------------------------
def test_barlow_twins_hand_values():
    assert barlow_twins(A, A).item() == pytest.approx(0.0, abs=1e-8)
    assert barlow_twins(A, -A).item() == pytest.approx(8.0, abs=1e-3)
    assert barlow_twins(Q, Q).item() == pytest.approx(0.01, abs=1e-6)
    assert barlow_twins(ZERO, ZERO).item() == pytest.approx(2.0)
    assert barlow_twins(A, -A, scale=0.025).item() == pytest.approx(0.2, abs=1e-4)  # solo-learn's scale
    assert barlow_twins_multi([(A, A), (A, A)]).item() == pytest.approx(0.0, abs=1e-8)


def _bt_loop(a, b, lam):
    """Barlow Twins from its definition with explicit sums (float64)."""
    n, d = a.shape
    sa = (a - a.mean(0)) / torch.sqrt(a.var(0, unbiased=False) + 1e-5)
    sb = (b - b.mean(0)) / torch.sqrt(b.var(0, unbiased=False) + 1e-5)
    total = 0.0
    for i in range(d):
        for j in range(d):
            c = sum(float(sa[k, i] * sb[k, j]) for k in range(n)) / n
            total += (1 - c) ** 2 if i == j else lam * c * c
    return total


def test_barlow_twins_matches_loop_and_multi_sums_the_documented_terms():
    gen = torch.Generator().manual_seed(1)
    views = [(torch.randn(5, 3, generator=gen, dtype=D), torch.randn(5, 3, generator=gen, dtype=D)) for _ in range(3)]
    assert barlow_twins(*views[0], lam=0.1).item() == pytest.approx(_bt_loop(*views[0], 0.1), rel=1e-9)
    expected = sum(_bt_loop(m1, m2, 5e-3) for m1, m2 in views) + sum(
        _bt_loop(views[i][0], views[j][1], 5e-3) + _bt_loop(views[i][1], views[j][0], 5e-3)
        for i, j in combinations(range(3), 2))
    assert barlow_twins_multi(views).item() == pytest.approx(expected, rel=1e-9)


def test_vicreg_hand_values():
    assert vicreg([A, A]).item() == pytest.approx(0.0, abs=1e-12)
    assert vicreg([ZERO, ZERO]).item() == pytest.approx(24.75)
    assert vicreg([Q, Q]).item() == pytest.approx(3.5556, abs=1e-4)
    assert vicreg([Q, Q], cov=5.0).item() == pytest.approx(17.78, abs=1e-2)
    assert vicreg([A, A + 1]).item() == pytest.approx(10.0)
    assert vicreg([A, A + 1], sim=25.0).item() == pytest.approx(25.0)
    assert vicreg([A, -A]).item() == pytest.approx(40.0)


def test_vicreg_three_modalities_average_as_documented():
    gen = torch.Generator().manual_seed(2)
    z = [torch.randn(6, 4, generator=gen, dtype=D) for _ in range(3)]

    def var(t):
        return sum(max(0.0, 1 - math.sqrt(float(t[:, j].var()) + 1e-4)) for j in range(t.shape[1])) / t.shape[1]

    def cov(t):
        c = torch.cov(t.T)
        return sum(float(c[i, j]) ** 2 for i in range(4) for j in range(4) if i != j) / 4

    inv = sum(float(((z[i] - z[j]) ** 2).mean()) for i, j in combinations(range(3), 2)) / 3
    expected = 10 * inv + 25 * sum(var(t) for t in z) / 3 + 2 * 1 * sum(cov(t) for t in z) / 3
    assert vicreg(z).item() == pytest.approx(expected, rel=1e-9)


# -- BYOL (Y1-Y4) ---------------------------------------------------------------------------------------------------
def test_byol_hand_values_and_momentum_schedule():
    p = torch.tensor([[1.0, 0]], dtype=D)
    assert byol_loss(p, 3 * p).item() == pytest.approx(0.0)
    assert byol_loss(p, torch.tensor([[0.0, 1]], dtype=D)).item() == pytest.approx(2.0)
    assert byol_loss(p, -p).item() == pytest.approx(4.0)
    assert [byol_momentum(k, 10, 0.99) for k in (0, 5, 10)] == pytest.approx([0.99, 0.995, 1.0])
    assert byol_momentum(5, 10, 0.996) == pytest.approx(0.998)


# -- methods ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NEW)
def test_new_methods_pass_the_contract_checks(name):
    check_method(METHODS.get(name))


@pytest.fixture(scope="module")
def data():
    d = load_dataset("synthetic")
    return d, d.split("xsub")


def _batch(method, data, idx):
    from benchmark.pretrain import _BatchMaker
    return _BatchMaker(method, data, torch.device("cpu"), 0)(torch.as_tensor(idx))


def test_cross_modal_variants_average_pairs_with_three_modalities():
    """With 3 modalities: byol_mm averages both directions over the 3 pairs, vicreg_mm averages as `vicreg`,
    barlow_twins_mm sums the documented 3 intra + 6 cross terms, sicl_mm stacks the 3 modalities as views."""
    with registered():
        d = load_dataset("fx_three")
        sp = d.split()
        info = DataInfo.from_data(d, sp)
        idx = sp.train[:8]
        assert len(info.shapes) == 3
        for name in ("byol_mm", "vicreg_mm", "barlow_twins_mm", "sicl_mm"):
            torch.manual_seed(0)
            m = build_method(name, info).eval()  # eval: no dropout, so two passes agree
            batch = _batch(m, d, idx)
            mods = list(info.shapes)
            x = batch["views"][0]
            with torch.no_grad():
                proj = {k: m.heads[k](m.encoder_modules[k](x[k])) for k in mods}
                if name == "byol_mm":
                    p = {k: m.online(k, x[k]) for k in mods}
                    z = {k: m.target(k, x[k]) for k in mods}
                    expected = sum(byol_loss(p[a], z[b]) + byol_loss(p[b], z[a]) for a, b in combinations(mods, 2)) / 3
                elif name == "vicreg_mm":
                    expected = vicreg([proj[k] for k in mods])
                elif name == "barlow_twins_mm":
                    expected = barlow_twins_multi([m.two_views(batch, k) for k in mods])
                else:
                    expected = sicl_loss([proj[k] for k in mods], batch["groups"]["subject"], 0.05, 0.2)
                assert m.loss(batch).item() == pytest.approx(expected.item(), rel=1e-5), name


def test_byol_target_moves_by_the_cosine_momentum(data):
    d, sp = data
    info = DataInfo.from_data(d, sp)
    m = build_method("byol", info, {"epochs": 4, "batch_size": 16})
    assert m.total_steps == 4 * (len(sp.train) // 16)
    before = [t.clone() for t in m.target_encoders["inertial"].parameters()]
    with torch.no_grad():
        for p in m.encoder_modules["inertial"].parameters():
            p.add_(1.0)
    m.after_step()
    tau = byol_momentum(0, m.total_steps, 0.99)
    for b, t in zip(before, m.target_encoders["inertial"].parameters()):
        assert torch.allclose(t, tau * b + (1 - tau) * (b + 1.0), atol=1e-6)
    assert m.steps_done == 1


def test_sicl_batches_carry_subjects_and_a_dataset_without_subjects_is_not_applicable(data):
    d, sp = data
    m = build_method("sicl", DataInfo.from_data(d, sp), {"batch_size": 8})
    batch = _batch(m, d, sp.train[:8])
    subj = np.unique(np.asarray(d.groups["subject"]), return_inverse=True)[1]
    assert batch["groups"]["subject"].tolist() == subj[sp.train[:8]].tolist()
    with registered():
        plain = load_dataset("fx_acc_only")
        why = METHODS.get("sicl").applicability(DataInfo.from_data(plain, plain.split()))
        assert why is not None and "'subject'" in why


def test_sicl_reference_split_and_subject_folds_on_utd_mhad_description():
    from benchmark.registry import DATASETS
    splits = DATASETS.get("utd_mhad").splits
    ref = splits["sicl_reference"]
    assert ref.train == ref.val == {"subject": [1, 3, 5, 7]} and ref.test == {"subject": [2, 4, 6, 8]}
    assert ref.val_overlaps_train and "NOT subject-independent" in ref.description
    folds = [splits[f"xsub_fold{k}"] for k in range(1, 5)]
    tested = sorted(s for f in folds for s in f.test["subject"])
    assert tested == list(range(1, 9)) and {f.family for f in folds} == {"xsub_folds"}
    for f in folds:
        parts = [set(f.train["subject"]), set(f.val["subject"]), set(f.test["subject"])]
        assert sum(map(len, parts)) == 8 and len(set.union(*parts)) == 8


def test_supervised_fusion_freezes_encoders_shared_with_the_unimodal_rows(data, tmp_path):
    d, sp = data
    pre = pretrain("supervised_fusion", d, sp, {"epochs": 1, "batch_size": 16}, 0, device="cpu")
    assert all(not p.requires_grad for p in pre.method.encoder_modules.parameters())
    assert any(p.requires_grad for p in pre.method.head.parameters())
    suite = replace(get_suite("smoke"), methods=("supervised", "supervised_fusion"), protocols=("paper_head",),
                    seeds=(0,))
    plan = plan_suite(suite, tmp_path / "res", device="cpu")
    fusion = [c for c in plan.cells if c.method == "supervised_fusion"]
    rows = {c.pretrain_key for c in plan.cells if c.method == "supervised" and c.variant != "supervised[all]"}
    deps = {k for c in fusion for k in plan.units[c.pretrain_key].deps.values()}
    assert len(fusion) == 1 and len(deps) == 2 and deps == rows


def test_random_init_is_never_trained(data):
    d, sp = data
    a = pretrain("random_init", d, sp, None, 3, device="cpu")
    b = pretrain("random_init", d, sp, None, 3, device="cpu")
    assert a.history == [] and all(torch.equal(x, y) for x, y in zip(a.method.state_dict().values(),
                                                                        b.method.state_dict().values()))
