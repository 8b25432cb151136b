"""Self-supervised losses of the benchmark: NT-Xent (SimCLR), CMC, CMC-CMKM, MoCo's queue InfoNCE, and (spec
`more_methods_spec.md`) SICL, Barlow Twins, VICReg and BYOL.

All losses take raw projections (they L2-normalise internally), are vectorised with masks (no per-anchor
loops) and run in float32 (or float64 when given float64) even inside a bf16 autocast region, because
exp(cos / tau) with a small tau is precision-sensitive. Formulas follow the reference spec, sections 1.4,
1.5, 2.1, 2.2 and 2.4.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

import torch
import torch.nn.functional as F

INTRA_TEMPERATURES = ("none", "tau")


def _full(z: torch.Tensor) -> torch.Tensor:
    """Half-precision tensors are promoted to float32; float32/float64 are kept."""
    return z.float() if z.dtype in (torch.float16, torch.bfloat16) else z


def _no_autocast(t: torch.Tensor):
    """A context that disables autocast on `t`'s device (so matmuls below stay in full precision)."""
    if torch.is_autocast_enabled(t.device.type):
        return torch.autocast(t.device.type, enabled=False)
    return nullcontext()


def unit(z: torch.Tensor) -> torch.Tensor:
    """Flatten to [N, d] and L2-normalise the rows."""
    return F.normalize(_full(z).flatten(1), dim=1)


def cosine_matrix(a: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """[N, M] cosine similarities between the (flattened) rows of `a` and `b` (default: `a` with itself)."""
    with _no_autocast(a):
        ua = unit(a)
        ub = ua if b is None else unit(b)
        return ua @ ub.T


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> torch.Tensor:
    """SimCLR's NT-Xent as in sthalles/SimCLR (spec 2.1): 2N rows, each a (2N-1)-way softmax, mean over rows.

    Rows are [view 1; view 2]; row a's positive is the other view of the same sample, its negatives the
    other 2N-2 embeddings (same-view and cross-view alike); the self-similarity is excluded.
    """
    n = z1.shape[0]
    with _no_autocast(z1):
        z = unit(torch.cat([z1, z2], dim=0))
        logits = (z @ z.T) / tau
        self_mask = torch.eye(2 * n, dtype=torch.bool, device=z.device)
        logits = logits.masked_fill(self_mask, float("-inf"))
        target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
        return F.cross_entropy(logits, target)


def cmc_loss(z_a: torch.Tensor, z_b: torch.Tensor, tau: float) -> torch.Tensor:
    """Two-view CMC with in-batch negatives (spec 2.2): mean of the row-wise and column-wise N-way CE of C/tau."""
    with _no_autocast(z_a):
        c = cosine_matrix(z_a, z_b) / tau
        target = torch.arange(c.shape[0], device=c.device)
        return 0.5 * (F.cross_entropy(c, target) + F.cross_entropy(c.T, target))


def mine_topk(h: torch.Tensor, k: int) -> torch.Tensor:
    """Indices [N, k] of each row's top-k cosine neighbours in the batch (spec 1.3): top-k of cos(h) - I.

    Subtracting the identity takes the self-similarity from 1 to 0, so self is excluded unless every
    other similarity of the row is negative (the reference's edge case, kept as is).
    """
    if not 1 <= k < h.shape[0]:
        raise ValueError(f"mining k must be between 1 and batch size - 1 = {h.shape[0] - 1}, got {k}")
    a = cosine_matrix(h)
    return torch.topk(a - torch.eye(a.shape[0], dtype=a.dtype, device=a.device), k=k, dim=1).indices


def connectivity(h: torch.Tensor) -> torch.Tensor:
    """Connectivity c_j = mean_i cos(h_i, h_j) of each sample, self included (spec 1.5, pruning/weighting)."""
    return cosine_matrix(h).mean(dim=0)


def index_mask(indices: torch.Tensor, n: int) -> torch.Tensor:
    """Boolean [N, n] mask, True at (i, indices[i, k]) for every k."""
    mask = torch.zeros(indices.shape[0], n, dtype=torch.bool, device=indices.device)
    return mask.scatter(1, indices.long(), True)


def _direction_losses(
    cross: torch.Tensor,
    intra: torch.Tensor,
    mined_other: torch.Tensor,
    mined_own: torch.Tensor,
    tau: float,
    lam: float,
    intra_scale: float,
    use_intra: bool,
    add_intra_positives: bool,
    pruned_other: torch.Tensor | None,
    pruned_own: torch.Tensor | None,
) -> torch.Tensor:
    """Per-anchor -log(Pos / (Pos + Neg)) for one anchor modality, computed as a difference of logsumexps.

    cross: [N, N] cosines anchor -> other modality; intra: [N, N] cosines within the anchor's modality.
    mined_other / mined_own: [N, N] masks of the neighbours mined by the other / own frozen encoder.
    """
    n = cross.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=cross.device)
    neg_inf = torch.tensor(float("-inf"), dtype=cross.dtype, device=cross.device)
    cross_logits = cross / tau
    cross_pos = eye | mined_other
    cross_neg = ~cross_pos
    if pruned_other is not None:
        cross_neg = cross_neg & ~pruned_other[None, :]
    pos_parts = [torch.where(cross_pos, cross_logits, neg_inf)]
    all_parts = [torch.where(cross_pos | cross_neg, cross_logits, neg_inf)]
    if use_intra:
        intra_logits = intra * intra_scale
        intra_neg = ~eye & ~mined_own
        if pruned_own is not None:
            intra_neg = intra_neg & ~pruned_own[None, :]
        if lam > 0:  # lambda weights the intra-modal negatives: exp(s) * lam = exp(s + log lam)
            all_parts.append(torch.where(intra_neg, intra_logits + math.log(lam), neg_inf))
        if add_intra_positives:
            intra_pos = torch.where(mined_own, intra_logits, neg_inf)
            pos_parts.append(intra_pos)
            all_parts.append(intra_pos)
    log_pos = torch.logsumexp(torch.cat(pos_parts, dim=1), dim=1)
    log_all = torch.logsumexp(torch.cat(all_parts, dim=1), dim=1)
    return log_all - log_pos


def cmkm_loss(
    z_i: torch.Tensor,
    z_s: torch.Tensor,
    mined_i: torch.Tensor | None,
    mined_s: torch.Tensor | None,
    tau: float,
    lam: float = 1.0,
    intra_temperature: str = "none",
    intra: bool = True,
    mining: bool = True,
    symmetric: bool = False,
    prune: tuple[torch.Tensor, torch.Tensor, float] | None = None,
    weighting: tuple[torch.Tensor, torch.Tensor, float] | None = None,
) -> torch.Tensor:
    """CMC with cross-modal knowledge mining, exactly as the reference computes it (spec 1.4 and 1.5).

    z_i, z_s: [N, d] inertial / skeleton projections of the same N samples.
    mined_i, mined_s: [N, k] neighbour indices found by the frozen inertial / skeleton encoders (`mine_topk`).
    For an inertial anchor, the skeleton-mined neighbours are extra cross-modal positives and its own
    (inertial-mined) neighbours are intra-modal positives; the reverse for a skeleton anchor.
    intra_temperature: "none" (reference: intra-modal terms are exp(cos), no 1/tau) or "tau" (exp(cos/tau)).
    intra: add intra-modal negatives (weight `lam`); intra-modal positives are added when `intra` and `mining`.
    symmetric: use the union of both mined sets for both anchors (cross- and intra-modal, as the reference).
    prune: (conn_i, conn_s, gamma): drop every j with connectivity > gamma from the negative sets (the
        other modality's connectivity for cross-modal negatives, the own modality's for intra-modal ones).
    weighting: (conn_i, conn_s, scale): multiply anchor i's loss by exp(scale * c_i) of its own modality.
    With intra=False and mining=False (and no pruning/weighting) this is exactly `cmc_loss`.
    """
    if intra_temperature not in INTRA_TEMPERATURES:
        raise ValueError(f"intra_temperature must be one of {INTRA_TEMPERATURES}, got {intra_temperature!r}")
    if lam < 0:
        raise ValueError(f"intra-modal negative weight lam must be >= 0, got {lam}")
    n = z_i.shape[0]
    with _no_autocast(z_i):
        ui, us = unit(z_i), unit(z_s)
        cross = ui @ us.T
        u_ii, u_ss = ui @ ui.T, us @ us.T
        if mining:
            if mined_i is None or mined_s is None:
                raise ValueError("cmkm_loss with mining=True needs mined_i and mined_s neighbour indices")
            p_i, p_s = index_mask(mined_i, n), index_mask(mined_s, n)
            if symmetric:
                p_i = p_s = p_i | p_s
        else:
            p_i = p_s = torch.zeros(n, n, dtype=torch.bool, device=ui.device)
        pruned_i = pruned_s = None
        if prune is not None:
            conn_i, conn_s, gamma = prune
            pruned_i, pruned_s = conn_i.to(ui.device) > gamma, conn_s.to(ui.device) > gamma
        intra_scale = 1.0 if intra_temperature == "none" else 1.0 / tau
        common: dict[str, Any] = dict(tau=tau, lam=lam, intra_scale=intra_scale, use_intra=intra,
                                      add_intra_positives=intra and mining)
        loss_i = _direction_losses(cross, u_ii, p_s, p_i, pruned_other=pruned_s, pruned_own=pruned_i, **common)
        loss_s = _direction_losses(cross.T, u_ss, p_i, p_s, pruned_other=pruned_i, pruned_own=pruned_s, **common)
        losses = torch.cat([loss_i, loss_s])
        if weighting is not None:
            conn_i, conn_s, scale = weighting
            weights = torch.exp(scale * torch.cat([conn_i, conn_s]).to(losses))
            losses = losses * weights
        return losses.mean()


def infonce_queue(
    q: torch.Tensor,
    k: torch.Tensor,
    queue: torch.Tensor,
    tau: float,
    exclude: torch.Tensor | None = None,
) -> torch.Tensor:
    """MoCo's InfoNCE: for each query, the positive key against the queued keys, logits / tau (spec 2.4).

    q, k: [B, d] queries and their positive keys (normalised here); queue: [K, d] stored (unit) keys.
    exclude: optional [B, K] mask of queue entries that must not serve as negatives for a query (e.g. a
    stale copy of the query's own sample); they are dropped from the softmax.
    """
    with _no_autocast(q):
        uq, uk = unit(q), unit(k)
        pos = (uq * uk).sum(dim=1, keepdim=True)
        neg = uq @ _full(queue).to(uq.dtype).T
        if exclude is not None:
            neg = neg.masked_fill(exclude, float("-inf"))
        logits = torch.cat([pos, neg], dim=1) / tau
        return F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long, device=q.device))


def pairwise_cmc(z: dict[str, torch.Tensor], tau: float, order: Sequence[str] | None = None) -> torch.Tensor:
    """Full-graph CMC over >= 2 modalities: the sum of `cmc_loss` over every unordered pair of modalities."""
    names = list(order or z)
    if len(names) < 2:
        raise ValueError(f"CMC needs at least two modalities, got {names}")
    total = z[names[0]].new_zeros((), dtype=torch.float32)
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            total = total + cmc_loss(z[names[a]], z[names[b]], tau)
    return total


# -- the non-contrastive family and SICL (more_methods_spec.md) ---------------------------------------------------
def batch_standardise(z: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Per-dimension (z - mean) / sqrt(biased var + eps) over the batch: BatchNorm without affine, batch statistics."""
    z = _full(z).flatten(1)
    return (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + eps)


def barlow_twins(z_a: torch.Tensor, z_b: torch.Tensor, lam: float = 5e-3, scale: float = 1.0) -> torch.Tensor:
    """Barlow Twins (spec 2.1-2.2): with C = standardise(z_a)^T standardise(z_b) / N (cross-correlation, [D, D]),

        L = scale * ( sum_i (1 - C_ii)^2 + lam * sum_{i != j} C_ij^2 ).

    The standardisation always uses the batch's own statistics (the [NN] fork builds a fresh BatchNorm in every
    call); N is the batch size (drop_last batches). scale=1 is [NN]'s; solo-learn uses 0.025.
    """
    with _no_autocast(z_a):
        a, b = batch_standardise(z_a), batch_standardise(z_b)
        c = a.T @ b / a.shape[0]
        diag = torch.diagonal(c)
        off = c.pow(2).sum() - diag.pow(2).sum()
        return scale * ((1.0 - diag).pow(2).sum() + lam * off)


def barlow_twins_multi(views: Sequence[Sequence[torch.Tensor]], lam: float = 5e-3, scale: float = 1.0) -> torch.Tensor:
    """Cross-modal Barlow Twins (spec 2.2-2.3) over n modalities with two views each, `views[m] = (m1, m2)`:

        L = sum_m BT(m1, m2) + sum_{m < m'} [ BT(m1, m'2) + BT(m2, m'1) ]      (a sum, as [NN] at n = 2)
    """
    terms = []
    for i, (a1, a2) in enumerate(views):
        terms.append(barlow_twins(a1, a2, lam, scale))
        for b1, b2 in views[i + 1:]:
            terms += [barlow_twins(a1, b2, lam, scale), barlow_twins(a2, b1, lam, scale)]
    return torch.stack(terms).sum()


def _vicreg_variance(z: torch.Tensor, gamma: float = 1.0, eps: float = 1e-4) -> torch.Tensor:
    """v(Z) = mean_j max(0, gamma - sqrt(Var(z^j) + eps)), unbiased variance."""
    return F.relu(gamma - torch.sqrt(z.var(0, unbiased=True) + eps)).mean()


def _vicreg_covariance(z: torch.Tensor) -> torch.Tensor:
    """c(Z) = (1/D) sum_{i != j} C(Z)_ij^2 with C(Z) the unbiased covariance matrix."""
    zc = z - z.mean(0)
    cov = zc.T @ zc / (z.shape[0] - 1)
    return (cov.pow(2).sum() - torch.diagonal(cov).pow(2).sum()) / z.shape[1]


def vicreg_terms(zs: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
    """The three VICReg terms over n >= 2 embeddings (views or modalities), spec 3.1-3.3:
    invariance = mean over pairs of the MSE (mean over N*D), variance = mean over embeddings of v(Z),
    covariance = mean over embeddings of c(Z)."""
    if len(zs) < 2:
        raise ValueError(f"VICReg needs at least two embeddings, got {len(zs)}")
    z = [_full(t).flatten(1) for t in zs]
    pairs = [(i, j) for i in range(len(z)) for j in range(i + 1, len(z))]
    inv = torch.stack([F.mse_loss(z[i], z[j]) for i, j in pairs]).mean()
    var = torch.stack([_vicreg_variance(t) for t in z]).mean()
    cov = torch.stack([_vicreg_covariance(t) for t in z]).mean()
    return {"invariance": inv, "variance": var, "covariance": cov}


def vicreg(zs: Sequence[torch.Tensor], sim: float = 10.0, std: float = 25.0, cov: float = 1.0) -> torch.Tensor:
    """VICReg in the official form (each variance term halved, i.e. their mean; the covariance terms summed):

        L = sim * avg_pairs mse + std * avg_m v(Z_m) + 2 * cov * avg_m c(Z_m)

    At two embeddings this is exactly the official / [NN] loss; defaults are [NN]'s configs (10 / 25 / 1),
    the paper's are 25 / 25 / 1. Spec 3.1-3.3.
    """
    with _no_autocast(zs[0]):
        t = vicreg_terms(zs)
        return sim * t["invariance"] + std * t["variance"] + 2.0 * cov * t["covariance"]


def byol_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """One BYOL direction (spec 4.1): mean over the batch of ||p/|p| - z/|z|||^2 = 2 - 2 cos(p, z); z is detached."""
    with _no_autocast(p):
        return (2.0 - 2.0 * (unit(p) * unit(z.detach())).sum(1)).mean()


def byol_momentum(step: int, total_steps: int, base: float) -> float:
    """BYOL's cosine-increasing target momentum tau_k = 1 - (1 - base) (cos(pi k / K) + 1) / 2 (1 at k = K)."""
    if total_steps <= 0:
        return base
    k = min(max(step, 0), total_steps)
    return 1.0 - (1.0 - base) * (math.cos(math.pi * k / total_steps) + 1.0) / 2.0


def sicl_loss(views: Sequence[torch.Tensor], subjects: torch.Tensor, tau: float, tau_plus: float = 0.2,
              labels: torch.Tensor | None = None) -> torch.Tensor:
    """Subject-invariant contrastive loss exactly as olivesgatech/SICL computes it (spec 1.3-1.4).

    views: n tensors [B, d] (augmented views, or modalities for the CMC-style form), rows ordered [view 1; view 2;
    ...]; subjects: [B] subject ids. With s_rk = (cos_rk - max_k cos_rk) / tau (the row-max shift is part of the
    loss), P(r) the other views of r's clip (SI-SupCon, `labels` given: every row of the same label), S(r) the
    other rows of r's subject, D(r) the rows of other subjects, N = n (B - 1):

        Pi   = exp(sum_r sum_{k in P(r)} s_rk)                          (one scalar per batch)
        Ng_r = max((log sum_{S(r)} exp s_rk - tau_plus N Pi) / (1 - tau_plus), N exp(-1 / tau))
        l_r  = log sum_{D(r)} exp s_rk - mean_{k in P(r)} (s_rk - Ng_k),   L = mean_r l_r.

    The reference's HCL weight beta cancels exactly and is not a parameter. A batch of one subject has no
    negatives (the reference raises): this raises a ValueError.
    """
    n, b = len(views), views[0].shape[0]
    with _no_autocast(views[0]):
        z = unit(torch.cat(list(views), dim=0))
        logits = (z @ z.T) / tau
        s = logits - logits.max(dim=1, keepdim=True).values.detach()
        dev = z.device
        rows = torch.arange(n * b, device=dev)
        not_self = rows[:, None] != rows[None, :]
        clip = rows % b
        subj = subjects.to(dev).repeat(n)
        same_subject = (subj[:, None] == subj[None, :]) & not_self
        different = ~(subj[:, None] == subj[None, :])
        if not bool(different.any(1).all()):
            raise ValueError("SICL needs clips of at least two subjects in every batch (a batch from one subject has "
                             "no negatives); use a larger batch or a split with several training subjects")
        if labels is None:
            pos = (clip[:, None] == clip[None, :]) & not_self
        else:
            lab = labels.to(dev).repeat(n)
            pos = (lab[:, None] == lab[None, :]) & not_self
        neg_inf = torch.tensor(float("-inf"), dtype=s.dtype, device=dev)
        big_n = n * (b - 1)
        pi = torch.exp(torch.where(pos, s, torch.zeros_like(s)).sum())
        g = torch.logsumexp(torch.where(same_subject, s, neg_inf), dim=1)
        ng = torch.clamp((g - tau_plus * big_n * pi) / (1.0 - tau_plus), min=big_n * math.exp(-1.0 / tau))
        log_d = torch.logsumexp(torch.where(different, s, neg_inf), dim=1)
        pos_term = torch.where(pos, s - ng[None, :], torch.zeros_like(s)).sum(1) / pos.sum(1).clamp(min=1)
        return (log_d - pos_term).mean()
