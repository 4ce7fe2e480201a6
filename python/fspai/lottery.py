"""Lottery tickets: iterative magnitude pruning (IMP) with weight rewinding.

Built on :func:`fspai.train.fit` (training) and :func:`fspai.selection.select_topk` (the
magnitude selection); re-exported as :func:`fspai.pai.imp` / :class:`fspai.pai.IMPResult`.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import torch
import torch.nn as nn

from ._torch_utils import unwrap
from ._vocab import check_density
from .masks import apply_masks, extract_masks, prunable_parameters, realised_density, remove_masks
from .selection import select_topk
from .train import fit

__all__ = ["imp", "IMPResult"]

log = logging.getLogger(__name__)


@dataclass
class IMPResult:
    """Outcome of :func:`imp`.

    ``masks``: the final ticket's masks; ``state_dict``: the rewound weights and buffers (plain
    parameter names, CPU) to train the ticket from; ``rewind_to``: the step they come from
    (0 = initialisation); ``history``: one dict per round (round, density, train_loss, test_acc,
    test_loss, steps); ``trained_state_dict``: the last trained weights (if any round trained).
    """

    masks: Dict[str, torch.Tensor]
    state_dict: Dict[str, torch.Tensor]
    rewind_to: int
    history: List[Dict[str, Any]] = field(default_factory=list)
    trained_state_dict: Optional[Dict[str, torch.Tensor]] = None

    def apply(self, model: nn.Module) -> nn.Module:
        """Load the rewound weights into a plain (unmasked) ``model`` and attach the masks."""
        base = unwrap(model)
        if extract_masks(base):
            remove_masks(base, make_permanent=True)
        base.load_state_dict(self.state_dict)
        apply_masks(base, self.masks)
        return model


def _cpu_state(model: nn.Module) -> Dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def imp(model: nn.Module, data: Any, density: float, *, rounds: int, rewind_to: int = 0,
        steps: Optional[int] = None, epochs: Optional[int] = None, scope: str = "global",
        seed: int = 0, train_final: bool = True, **train_options) -> IMPResult:
    """Iterative magnitude pruning with weight rewinding (Frankle & Carbin 2019; Frankle et al.
    2020), the lottery-ticket comparator of the NeurIPS 2023 paper.

    Round 0 trains the dense network for ``steps``/``epochs`` (``fspai.train.fit`` with
    ``train_options``, e.g. ``lr=``, ``optimizer=``) and stores the weights at step
    ``rewind_to`` (0 = the initialisation: classic LTH; k > 0: LTH-rewind). Each of the
    ``rounds`` pruning rounds removes the smallest-magnitude surviving weights of the trained
    network so that round r keeps ``density**(r/rounds)``, rewinds the survivors to the stored
    weights, and (except after the last round unless ``train_final``) trains again with the
    mask fixed. ``model`` is not modified. Every round trains with the same ``seed``.
    """
    density = check_density(density)
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be an integer >= 1, got {rounds!r}")
    if isinstance(rewind_to, bool) or not isinstance(rewind_to, int) or rewind_to < 0:
        raise ValueError(f"rewind_to must be >= 0, got {rewind_to}")
    cfg = train_options.get("config")
    if steps is None and epochs is None and (cfg is None or (cfg.steps is None and
                                                             cfg.epochs is None)):
        raise ValueError("imp needs the training length of each round: steps= or epochs=")
    if steps is not None and rewind_to > steps:
        raise ValueError(f"rewind_to={rewind_to} is beyond the {steps} training steps")
    train_options.setdefault("progress", False)
    user_callbacks = list(train_options.pop("callbacks", None) or ())
    work = copy.deepcopy(unwrap(model))
    if extract_masks(work):
        remove_masks(work, make_permanent=True)
    rewind_state: Dict[str, torch.Tensor] = _cpu_state(work)
    captured: Dict[str, Dict[str, torch.Tensor]] = {}

    def capture(state) -> None:        # round 0 trains the dense copy: plain state-dict names
        if state.step == rewind_to and "w" not in captured:
            captured["w"] = _cpu_state(unwrap(state.model))

    history: List[Dict[str, Any]] = []
    masks = {n: torch.ones(p.shape, dtype=torch.bool) for n, p in prunable_parameters(work).items()}
    trained: Optional[Dict[str, torch.Tensor]] = None
    for r in range(rounds + 1):
        last = r == rounds
        if not last or train_final:
            extra = [capture] if r == 0 and rewind_to > 0 else []
            h = fit(work, data, masks=None if r == 0 else masks, steps=steps, epochs=epochs,
                    seed=seed, callbacks=user_callbacks + extra, **train_options)
            if r == 0 and rewind_to > 0:
                if "w" not in captured:
                    raise ValueError(f"rewind_to={rewind_to} is beyond the {h.total_steps} "
                                     "training steps")
                rewind_state = captured["w"]
            ev = h.epochs[-1] if h.epochs else {}
            history.append({"round": r, "density": realised_density(masks),
                            "train_loss": ev.get("train_loss"), "test_acc": ev.get("test_acc"),
                            "test_loss": ev.get("test_loss"), "steps": h.total_steps})
            log.info("IMP round %d: density %.4g, test acc %s", r, realised_density(masks),
                     ev.get("test_acc"))
            if extract_masks(work):
                remove_masks(work, make_permanent=True)
            trained = _cpu_state(work)
        if last:
            break
        target = density ** ((r + 1) / rounds)
        mags = {n: p.detach().abs().cpu() for n, p in prunable_parameters(work).items()}
        masks = select_topk(mags, target, scope=scope, alive=masks)
        work.load_state_dict(rewind_state)
    return IMPResult(masks=masks, state_dict=rewind_state, rewind_to=rewind_to, history=history,
                     trained_state_dict=trained)
