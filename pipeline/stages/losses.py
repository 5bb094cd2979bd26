"""The distillation losses, as pure functions of logits, so each can be checked by hand.

Every teacher enters detached: no gradient reaches a teacher through these losses.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def kl_divergence(teacher_logits: Tensor, student_logits: Tensor, temperature: float = 1.0) -> Tensor:
    """Per-sample tau^2 KL(softmax(t/tau) || softmax(s/tau)), teacher detached (Hinton et al. 2015)."""
    teacher = F.softmax(teacher_logits.detach() / temperature, dim=1)
    log_student = F.log_softmax(student_logits / temperature, dim=1)
    return F.kl_div(log_student, teacher, reduction="none").sum(1) * temperature**2


def esd_teacher(outputs: Sequence[Tensor], labels: Tensor) -> tuple[Tensor, Tensor]:
    """ESD's filtered teacher: the mean of the outputs whose argmax is the label.

    Follows the official code (``make_teacher``): the logits of the right outputs are averaged
    (the poster writes probabilities; the code softmaxes the averaged logits in the KL). Returns the
    teacher logits (B, K), detached, and the mask of reliable samples, those with at least one
    right output. An unreliable sample's teacher is all zeros.
    """
    stacked = torch.stack([o.detach() for o in outputs])  # (L, B, K)
    right = (stacked.argmax(2) == labels.unsqueeze(0)).to(stacked.dtype)  # (L, B)
    count = right.sum(0)
    teacher = (stacked * right.unsqueeze(2)).sum(0) / (count.unsqueeze(1) + 1e-8)
    return teacher, count > 0


def esd_loss(
    outputs: Sequence[Tensor],
    labels: Tensor,
    temperature: float = 3.0,
    ce_weight: float = 1.0,
    kd_weight: float = 0.3,
    eta: float = 0.0,
) -> Tensor:
    """Enhanced self-distillation (Zhao, Yu et al.; seed poster and official code).

        L = ce_weight * sum_l CE(p_l, y)
          + kd_weight * sum_l mean_{reliable} KL_tau(teacher || p_l)
          + eta       * sum_l mean_{unreliable} R_l

    ``outputs`` are the branch logits and the network's own logits. The poster does not define R_l;
    the official code drops unreliable samples, which ``eta = 0`` (the default) reproduces. For
    ``eta > 0`` R_l is the confidence penalty sum_c p log p (negative entropy; Pereyra et al. 2017),
    which pulls a sample no output gets right away from confident predictions. The official
    CIFAR-100 run uses ce_weight 1, kd_weight 0.3 and temperature 3 (with the tau^2 factor).
    """
    teacher, reliable = esd_teacher(outputs, labels)
    ce = sum(F.cross_entropy(o, labels) for o in outputs)
    zero = outputs[0].new_zeros(())
    kd, reg = zero, zero
    if reliable.any():
        kd = sum(kl_divergence(teacher[reliable], o[reliable], temperature).mean() for o in outputs)
    if eta and (~reliable).any():
        reg = sum(confidence_penalty(o[~reliable]).mean() for o in outputs)
    return ce_weight * ce + kd_weight * kd + eta * reg


def confidence_penalty(logits: Tensor) -> Tensor:
    """Per-sample sum_c p log p (minus the entropy of softmax(logits))."""
    log_p = F.log_softmax(logits, dim=1)
    return (log_p.exp() * log_p).sum(1)


def eagd_loss(
    snn_logits: Tensor,
    hybrid_logits: Sequence[Tensor],
    ann_logits: Tensor,
    labels: Tensor,
    temperature: float = 1.0,
    hybrid_weight: float = 1.0,
    kd_weight: float = 1.0,
) -> Tensor:
    """ANN-guided block-wise distillation (Yang, Yu et al.; seed abstract, SPEC §3):
    CE(SNN, y) + sum_k KL(ANN || M_k) + KL(ANN || SNN)."""
    loss = F.cross_entropy(snn_logits, labels)
    for hybrid in hybrid_logits:
        loss = loss + hybrid_weight * kl_divergence(ann_logits, hybrid, temperature).mean()
    return loss + kd_weight * kl_divergence(ann_logits, snn_logits, temperature).mean()


def kd_loss(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor,
            temperature: float = 2.0, alpha: float = 0.5) -> Tensor:
    """Knowledge distillation: (1 - alpha) CE(s, y) + alpha tau^2 KL(t || s)."""
    ce = F.cross_entropy(student_logits, labels)
    return (1 - alpha) * ce + alpha * kl_divergence(teacher_logits, student_logits, temperature).mean()


def activity_penalty(rates: Sequence[Tensor], norm: int = 1) -> Tensor:
    """sum over layers of mean_neurons(r^norm), with r each neuron's firing rate in a sample
    (spike count / T): L1 (norm 1) or L2 (norm 2) on spike counts per layer (Louis et al. 2024)."""
    if norm not in (1, 2):
        raise ValueError(f"norm={norm}: use 1 (L1) or 2 (L2)")
    return sum((r.abs() if norm == 1 else r.pow(2)).mean() for r in rates)


def logits_penalty(logits: Tensor) -> Tensor:
    """mean over samples of ||z||^2: the logits regularization of Louis et al. (2024)."""
    return logits.pow(2).sum(1).mean()


def joint_loss(
    ann_outputs: Sequence[Tensor],
    snn_outputs: Sequence[Tensor],
    labels: Tensor,
    ann_features: Sequence[Tensor] = (),
    snn_features: Sequence[Tensor] = (),
    lambda1: float = 1.0,
    lambda2: float = 0.3,
) -> Tensor:
    """Joint A-SNN (Guo et al.; seed paper eqs. 7-10; SPEC §3), over all outputs i and branch features j:

        sum_i CE(y_ANN,i, z) + sum_i CE(y_SNN,i, z)
        + lambda1 sum_i KL(detach(y_ANN,i) || y_SNN,i)
        + lambda2 sum_j mean (detach(f_ANN,j) - f_SNN,j)^2

    The L2 "hint" term departs from eq. (9), sum_j ||detach(y_ANN,j) - y_SNN,j||_F^2, in two ways
    (docs/notes.md, "`joint` and the paper's eq. (9)"):

    - what it compares: the branches' pooled features f (B, C_j), as SPEC §3, Fig. 1 and the text
      ("the output features of ANN and SNN") say, not the outputs y that eq. (9)'s symbols name.
      On the logits it pulls the SNN's readout toward the ANN's scale and training collapses
      (33.6% on Fashion-MNIST, tried).
    - its scale: the mean over the B x C_j elements, ||.||_F^2 / (B C_j), not the squared Frobenius
      norm, which grows with the batch and the width: at initialization on Fashion-MNIST (batch
      128, vgg [16, A, 32, A, 64, A, 128]) the four branches' norms sum to 2248 against 23.2 for
      all ten CE terms, so that lambda2 = 0.3 would make the hint 29x the CE. The mean keeps
      lambda2 = 0.3 (the paper's) one weight at any batch size and width. Per sample (summed over
      the features) the hint trained digits to 98.61% at firing rate 0.295 against 99.35% at 0.215
      (benchmarks/joint_hint.py).

    The paper uses lambda1 = 1 and lambda2 = 0.3.
    """
    ce = sum(F.cross_entropy(o, labels) for o in ann_outputs) + sum(F.cross_entropy(o, labels) for o in snn_outputs)
    kld = sum(kl_divergence(a, s).mean() for a, s in zip(ann_outputs, snn_outputs))
    l2 = sum(F.mse_loss(s, a.detach()) for a, s in zip(ann_features, snn_features))
    return ce + lambda1 * kld + lambda2 * l2
