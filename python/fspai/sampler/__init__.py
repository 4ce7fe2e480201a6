"""Full-Spectrum PaI: sampling pruning-at-initialization masks guided by the full-spectrum
coordinate (NeurIPS 2023, "Don't just prune by magnitude! Your mask topology is another secret
weapon").

Algorithm (as the authors' ``lth_tickets_generation.py`` implements it)::

    θ*  = random init | dense model after ``pretrain_steps`` SGD iterations | user checkpoint
    m0  = P(θ*, full data)                      # the vanilla PaI baseline ("mask_0")
    best_j = (m0_j, c(m0_j, θ*_j))              # per layer j, c = full-spectrum coordinate
    for t = 1..N:
        cand = P on a few mini-batches (SNIP/GraSP/iterSNIP), on noised weights
               (SynFlow/iterSNIP/magnitude) or a fresh random draw (random/ERK)
        score every layer of cand with the un-noised θ*  (one batched ``fspai.coordinates`` call)
        rule "layer":   take cand_j  iff  imdb(cand_j) >= imdb(best_j) and ‖c(cand_j)‖ >= ‖c(best_j)‖
        rule "network": take all of cand iff mean_j ‖c(cand_j)‖ > mean_j ‖c(best_j)‖
        every K samples, if anything changed: save the composite mask with its coordinates

Determinism and sharding.  Everything random about candidate ``t`` (its data batches, its weight
noise, the seed handed to the PaI method) is derived from ``(seed, t)`` alone, so candidate ``t``
is the same mask whichever process makes it.  Under ``torchrun`` (an initialised
``torch.distributed`` process group) candidate ``t`` is generated and scored by rank
``(t - 1) % world_size``; every ``sync_every`` candidates (a multiple of ``save_interval``) the
ranks all-gather the per-layer scores (one float64 tensor, a few floats per layer and candidate)
and every rank replays the acceptance rule in candidate order ``t = 1, 2, …``, ``save_interval``
candidates at a time (so snapshots fall where a single process puts them).  The replay is exactly
what one process does, so the result is identical to a single-process run for the same seed, and
ties are broken deterministically by candidate index (a later candidate that ties under the ``>=``
layer rule wins, as in the released code; under the strict network rule the earliest maximiser
wins).  Only the masks of accepted layers travel (broadcast from the rank that made them).

Budget.  The released code lets the composite's global density drift from the target, because
every candidate has its own per-layer allocation (global thresholding).  ``budget="free"``
reproduces that and reports the realised density.  ``budget="preserve"`` keeps every layer at the
baseline's edge count: each candidate layer is trimmed or topped up to the baseline count by
top-k on a ranking that puts the candidate's own edges first and orders edges within and outside
them by the base method's saliency on the candidate's inputs (|θ·g| for SNIP/iterSNIP, -θ·Hg for
GraSP, |θ·∂R/∂θ| for SynFlow, |θ| for magnitude, a seeded uniform draw for random/ERK).  Of the
two options in the issue this one was chosen because (a) it is the minimal edit of the candidate
(a layer that already has the baseline count is left untouched, so ERK candidates are unchanged),
(b) it works for every base method, including the iterative ones whose per-layer allocation can
not be fixed in advance, and (c) it keeps the acceptance rule comparing like with like: every
layer the rule sees has exactly the baseline's number of edges, so the global density is exactly
the baseline's.

Caveat (measured, MNIST-1D MLP, see the project's experiment notes): the per-layer rule scores
every layer as its own bipartite graph, so a composite can pair layer ``l`` of one candidate with
layer ``l+1`` of another whose input units do not line up, and it can move edges away from a
bottleneck layer (``budget="free"``).  A higher coordinate norm then does not imply a better
network; compare the composite against its baseline before trusting it.
"""
from __future__ import annotations

from .._vocab import METHODS
from ..distributed import dist_info, init_distributed
from ..masks import realised_density
from ..weights import prepare_weights, pretrain
from .candidates import CandidateMaker, rescale_layer
from .protocols import PROTOCOL_NAMES, PROTOCOLS, Protocol, get_protocol
from .core import FullSpectrumSampler, SamplerConfig, SamplerResult, Snapshot
from .rules import (BUDGETS, RULES, LayerScore, accept_layers, accept_network, candidate_seed,
                    replay)

__all__ = [
    "METHODS", "RULES", "BUDGETS", "FullSpectrumSampler", "SamplerConfig", "SamplerResult",
    "Snapshot", "LayerScore", "accept_layers", "accept_network", "replay", "candidate_seed",
    "prepare_weights", "pretrain", "init_distributed", "dist_info", "realised_density",
    "CandidateMaker", "rescale_layer", "PROTOCOLS", "PROTOCOL_NAMES", "Protocol",
    "get_protocol",
]

_rescale_layer = rescale_layer
