"""Fold toto2's unit-scaling constants into plain weights once, at load.

Why: dd_unit_scaling's layers are training-time constructs. Every call of its `Linear` copies the
input, the weight and the bias (`scale_bwd` is `1.0 * X` in the forward pass) and rescales the
output; every residual split/add copies and rescales the whole residual stream; `silu`, `Dropout(0)`
and `PerDimScale` do the same. None of it depends on the input: at inference these are constants.
Profiled on the 2-core CPU, 29–31 % of the model's samples were in `_ScaledGrad.forward`.

Folded, each layer is a plain `nn.Linear` whose weight and bias already carry the scales, each
residual add is one `torch.add(f, x, alpha=skip_scale)`, and the two linears that read the same
input in a residual MLP become one matmul. Arithmetic is re-associated (`(s·W)x` instead of
`s·(Wx)`), so results differ from the unfolded model by float32 rounding only (~1e-7 relative,
checked on every load by `verify_folded`).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def _linear_output_scale(layer: nn.Module) -> float:
    """The constant dd_unit_scaling.functional.linear multiplies its output by."""
    from unit_scaling.constraints import apply_constraint

    fan_in = layer.weight.shape[1]
    output_scale = 1.0 / fan_in ** layer.scale_power[0]
    grad_input_scale = 1.0 / layer.weight.shape[0] ** layer.scale_power[1]
    if layer.constraint is not None:
        output_scale, _ = apply_constraint(layer.constraint, output_scale, grad_input_scale)
    return float(output_scale)


def _plain_linear(
    layer: nn.Module, scale: float = 1.0, rows: torch.Tensor | None = None
) -> nn.Linear:
    """nn.Linear computing scale · layer(x) (rows: an extra per-output-row factor)."""
    factor = torch.full((layer.weight.shape[0],), _linear_output_scale(layer) * scale, dtype=torch.float64)
    if rows is not None:
        factor = factor * rows.to(torch.float64)
    return _linear_from(layer.weight, layer.bias, factor)


def _linear_from(
    weight: torch.Tensor, bias: torch.Tensor | None, factor: torch.Tensor, dtype: torch.dtype | None = None
) -> nn.Linear:
    """nn.Linear with rows of weight and bias multiplied by `factor` (computed in float64)."""
    dtype = dtype or weight.dtype
    out = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None,
                    device=weight.device, dtype=dtype)
    with torch.no_grad():
        out.weight.copy_((weight.detach().double() * factor[:, None].to(weight.device)).to(dtype))
        if bias is not None:
            out.bias.copy_((bias.detach().double() * factor.to(bias.device)).to(dtype))
    return out


def _silu_scale() -> float:
    """unit_scaling's silu output scale, read by probing it in float64 (exact)."""
    from dd_unit_scaling import functional as U

    probe = torch.ones(1, dtype=torch.float64)
    return float(U.silu(probe) / F.silu(probe))


def _residual_scales(tau: torch.Tensor | float) -> tuple[float, float]:
    """(residual, skip) forward scales of residual_add(·, ·, tau)."""
    tau = float(tau)
    denom = math.sqrt(1.0 + tau * tau)
    return tau / denom, 1.0 / denom


class FoldedRMSNorm(nn.Module):
    """The fused torch RMSNorm kernel in place of unit_scaling's pow/mean/sqrt/div chain."""

    def __init__(self, norm: nn.Module) -> None:
        super().__init__()
        self.shape = tuple(norm.normalized_shape)
        self.eps = float(norm.eps)
        self.weight = None if norm.weight is None else nn.Parameter(norm.weight.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, self.shape, self.weight, self.eps)


class FoldedGLU(nn.Module):
    """toto2's SwiGLU feed-forward (`gate * silu(x)`), fc2 carrying the residual scale."""

    def __init__(self, ffn: nn.Module, out_scale: float) -> None:
        super().__init__()
        self.fc1 = _plain_linear(ffn.fc1)
        self.fc2 = _plain_linear(ffn.fc2, out_scale)

    def forward(self, x: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        gate, value = self.fc1(x).chunk(2, dim=-1)
        return self.fc2(gate * F.silu(value))


class FoldedTransformerLayer(nn.Module):
    """x + attn(norm(x)), then x + ffn(norm(x)), with the τ-rule scales inside the weights."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        attn_res, self.attn_skip = _residual_scales(layer.attn_tau)
        mlp_res, self.mlp_skip = _residual_scales(layer.mlp_tau)
        self.attn = _fold_attention(layer.attn, attn_res)
        self.ffn = FoldedGLU(layer.ffn, mlp_res)
        self.norm1 = FoldedRMSNorm(layer.norm1)
        self.norm2 = FoldedRMSNorm(layer.norm2)

    def forward(self, x: torch.Tensor, seq_ids: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor:
        x = torch.add(self.attn(self.norm1(x), seq_ids, **kwargs), x, alpha=self.attn_skip)
        return torch.add(self.ffn(self.norm2(x)), x, alpha=self.mlp_skip)


def _fold_attention(attn: nn.Module, out_scale: float) -> nn.Module:
    """toto2's SelfAttention with plain projections; PerDimScale folded into the query rows.

    The query is the first `heads·qk_dim` outputs of in_proj, laid out (head, dim), so a
    per-dim factor on q is a per-row factor on those rows — exact when there is no q-norm between.
    """
    rows = None
    if attn._pds is not None and attn.q_norm is None:
        per_dim = attn._pds(torch.ones(attn.config.qk_dim, dtype=attn.in_proj.weight.dtype,
                                       device=attn.in_proj.weight.device)).detach()
        rows = torch.ones(attn.in_proj.weight.shape[0], dtype=torch.float64, device=per_dim.device)
        rows[: attn._Hq * per_dim.shape[0]] = per_dim.double().repeat(attn._Hq)
        attn._pds = None
    attn.in_proj = _plain_linear(attn.in_proj, rows=rows)
    attn.out_proj = _plain_linear(attn.out_proj, out_scale)
    if attn.q_norm is not None:
        attn.q_norm, attn.k_norm = FoldedRMSNorm(attn.q_norm), FoldedRMSNorm(attn.k_norm)
    return attn


class FoldedResidualMLP(nn.Module):
    """ResidualMLP (patch embedding, output head): linear1 and skip_proj read the same input,
    so they are one matmul; the silu, linear and τ scales live in linear2 / skip weights."""

    def __init__(self, mlp: nn.Module) -> None:
        super().__init__()
        residual, skip = _residual_scales(mlp.tau)
        first = _plain_linear(mlp.linear1)
        skip_proj = _plain_linear(mlp.skip_proj, skip)
        self.hidden = first.weight.shape[0]
        bias = None
        if first.bias is not None or skip_proj.bias is not None:
            bias = torch.cat([_bias_or_zeros(first), _bias_or_zeros(skip_proj)])
        self.first = _linear_from(torch.cat([first.weight, skip_proj.weight]), bias,
                                  torch.ones(self.hidden + skip_proj.weight.shape[0], dtype=torch.float64))
        second = mlp.linear2
        factor = torch.full((second.weight.shape[0],), _linear_output_scale(second) * residual,
                            dtype=torch.float64)
        # silu's output scale multiplies linear2's input: it folds into the weight, not the bias.
        self.second = _linear_from(second.weight.detach().double() * _silu_scale(), second.bias, factor,
                                   dtype=second.weight.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        both = self.first(x)
        hidden, skip = both[..., : self.hidden], both[..., self.hidden :]
        return torch.add(self.second(F.silu(hidden)), skip)


def _bias_or_zeros(layer: nn.Linear) -> torch.Tensor:
    if layer.bias is not None:
        return layer.bias.detach()
    return torch.zeros(layer.weight.shape[0], dtype=layer.weight.dtype, device=layer.weight.device)


def _identity_for_zero_dropout(dropout: nn.Module) -> nn.Module:
    if dropout.p != 0.0:  # toto2's config rejects dropout_p != 0; unit-scaled dropout would rescale
        raise RuntimeError(f"cannot fold unit-scaled Dropout(p={dropout.p})")
    return nn.Identity()


def _replace(root: nn.Module, cls: type, make: Any) -> int:
    count = 0
    for parent in list(root.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, cls):
                setattr(parent, name, make(child))
                count += 1
    return count


@dataclass
class FoldReport:
    transformer_layers: int
    residual_mlps: int
    norms: int
    leftover_unit_scaled: int  # unit-scaling modules that remain (0 for every released architecture)


def fold_unit_scaling(model: nn.Module) -> tuple[nn.Module, FoldReport]:
    """A folded deep copy of a toto2 model (the original is left untouched)."""
    import dd_unit_scaling as uu
    import unit_scaling
    from toto2 import model as toto_model

    folded = copy.deepcopy(model).eval()
    with torch.no_grad():
        layers = _replace(folded, toto_model.SelfAttentionTransformerLayer, FoldedTransformerLayer)
        mlps = _replace(folded, toto_model.ResidualMLP, FoldedResidualMLP)
        norms = _replace(folded, uu.RMSNorm, FoldedRMSNorm)
        _replace(folded, unit_scaling.Dropout, _identity_for_zero_dropout)
        for module in folded.modules():
            if isinstance(module, uu.Linear | uu.PerDimScale):
                raise RuntimeError(f"unfolded unit-scaling module left: {type(module).__name__}")
    leftover = sum(
        1 for m in folded.modules()
        if type(m).__module__.startswith(("unit_scaling", "dd_unit")) and not isinstance(m, nn.ModuleList)
    )
    for p in folded.parameters():
        p.requires_grad_(False)
    return folded, FoldReport(layers, mlps, norms, leftover)


def probe_inputs(n_rows: int = 3, context: int = 256, seed: int = 0, level: float = 1e3
                 ) -> dict[str, torch.Tensor]:
    """A small batch with left padding and gaps (the cases the attention masks exist for).

    Levels are uniform in [0.1, 1]·`level`: with level ~1 an absolute tolerance is meaningful
    (float32 rounding grows with the values, ~1e-4 at level 1e3).
    """
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(context, dtype=torch.float32)
    level = (torch.rand(n_rows, 1, 1, generator=gen) * 0.9 + 0.1) * level
    noise = torch.randn(n_rows, 1, context, generator=gen)
    values = level * (1 + 0.3 * torch.sin(2 * math.pi * t / 24) + 0.05 * noise)
    mask = torch.ones(n_rows, 1, context, dtype=torch.bool)
    mask[0, :, : context // 4] = False  # left padding
    if n_rows > 1:
        mask[1, :, context // 3 : context // 3 + 40] = False  # a gap spanning a whole patch
    values = torch.where(mask, values, torch.zeros_like(values))
    return {"target": values, "target_mask": mask, "series_ids": torch.zeros(n_rows, 1, dtype=torch.long)}


def relative_error(reference: torch.Tensor, other: torch.Tensor) -> tuple[float, float]:
    """(max |Δ| / output range, max |Δ|)."""
    diff = float((reference.double() - other.double()).abs().max())
    spread = float(reference.double().max() - reference.double().min()) or 1.0
    return diff / spread, diff


def verify_folded(original: nn.Module, folded: nn.Module, horizon: int = 64, level: float = 1.0,
                  **forecast_kwargs: Any) -> tuple[float, float]:
    """Forecast the probe batch with both models; (relative, absolute) max difference."""
    inputs = probe_inputs(level=level)
    with torch.inference_mode():
        a = original.forecast(inputs, horizon, **forecast_kwargs)
        b = folded.forecast(inputs, horizon, **forecast_kwargs)
    return relative_error(a, b)
