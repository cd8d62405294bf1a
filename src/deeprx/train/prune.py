"""Students initialised from a teacher's own weights: channel pruning of a DeepRx into a narrower preset.

The criterion is network slimming's (Liu et al. 2017): a channel matters as much as the BatchNorm scales that
read it, ``|gamma|``. In DeepRx's pre-activation ResNet two kinds of channels are kept or dropped:

* **Residual-stream channels.** A stream position is the stem's output or a block's output; consecutive
  positions joined by an identity skip carry the same channels, so they form one *group* and keep one set
  of indices. A stream channel's score is the sum of ``|gamma|`` over every BatchNorm reading it: the
  ``bn1`` of each block whose input lies in the group, and the head's BatchNorm for the last position.
* **A block's inner channels** (``conv1``'s outputs, read by ``bn2``): their own ``|bn2.gamma|``.

Each layer keeps the highest-scoring channels up to the student's width (in their original order), and every
weight is sliced accordingly: a depthwise convolution with depth multiplier ``k`` keeps the ``k`` filters of
each kept input, the pointwise and dense convolutions their kept rows and columns, the stem its kept outputs,
the head its kept inputs. Teacher and student must share the layout (block type, depth multiplier,
dilations, which skips are identities) and the student may not be wider anywhere.
"""

from __future__ import annotations

import torch
from torch import nn

from deeprx.models.deeprx import DeepRx, PreActBlock


class PruneError(ValueError):
    """The student cannot be cut from the teacher: the message says why."""


def stream_groups(stream_widths: list[int]) -> list[int]:
    """Group id of each residual-stream position (stem output, then each block's output): a block whose input
    and output widths agree has an identity skip, so its output joins its input's group."""
    groups = [0]
    for i in range(1, len(stream_widths)):
        groups.append(groups[-1] if stream_widths[i] == stream_widths[i - 1] else groups[-1] + 1)
    return groups


def _widths(model: DeepRx) -> list[int]:
    return [model.config.stem_channels, *model.config.channels]


def _top(scores: torch.Tensor, keep: int) -> torch.Tensor:
    """Indices of the ``keep`` highest scores, in increasing index order."""
    return torch.sort(torch.topk(scores, keep).indices).values


def kept_channels(teacher: DeepRx, student: DeepRx) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The teacher's channels the student keeps: per stream position (``len(channels) + 1``) and per block's inner
    layer, as index tensors; :class:`PruneError` if the layouts differ or the student is wider."""
    t_cfg, s_cfg = teacher.config, student.config
    same = (t_cfg.block, t_cfg.depth_multiplier, t_cfg.dilations, t_cfg.in_channels, t_cfg.bits_per_symbol)
    if same != (s_cfg.block, s_cfg.depth_multiplier, s_cfg.dilations, s_cfg.in_channels, s_cfg.bits_per_symbol):
        raise PruneError(
            f"the student ({s_cfg.block} blocks, {s_cfg.in_channels} inputs) does not share the teacher's layout "
            f"({t_cfg.block} blocks, {t_cfg.in_channels} inputs): choose a student preset of the teacher's family"
        )
    t_widths, s_widths = _widths(teacher), _widths(student)
    groups = stream_groups(t_widths)
    if groups != stream_groups(s_widths) or any(s > t for s, t in zip(s_widths, t_widths, strict=True)):
        raise PruneError(
            f"the student's widths {s_widths} do not fit inside the teacher's {t_widths} with the same identity "
            "skips: choose a student preset of the teacher's family at a smaller width"
        )
    blocks: list[PreActBlock] = list(teacher.blocks)
    readers = [block.bn1 for block in blocks] + [teacher.head_bn]  # the BatchNorm reading each stream position
    group_scores: dict[int, torch.Tensor] = {}
    for position, group in enumerate(groups):
        score = readers[position].weight.detach().abs()
        group_scores[group] = group_scores.get(group, 0) + score
    group_keep = {group: _top(group_scores[group], s_widths[p]) for p, group in enumerate(groups)}
    stream = [group_keep[group] for group in groups]
    inner = [_top(block.bn2.weight.detach().abs(), s_cfg.channels[i]) for i, block in enumerate(blocks)]
    return stream, inner


@torch.no_grad()
def prune_into(teacher: DeepRx, student: DeepRx) -> None:
    """Overwrite ``student``'s weights with the teacher's, cut to the student's widths by :func:`kept_channels`."""
    stream, inner = kept_channels(teacher, student)
    _copy_conv(student.stem, teacher.stem, rows=stream[0], cols=None)
    for i, (t_block, s_block) in enumerate(zip(teacher.blocks, student.blocks, strict=True)):
        c_in, mid, c_out = stream[i], inner[i], stream[i + 1]
        _copy_bn(s_block.bn1, t_block.bn1, c_in)
        _copy_bn(s_block.bn2, t_block.bn2, mid)
        _copy_branch(s_block.conv1, t_block.conv1, rows=mid, cols=c_in)
        _copy_branch(s_block.conv2, t_block.conv2, rows=c_out, cols=mid)
        if isinstance(t_block.skip, nn.Conv2d):
            _copy_conv(s_block.skip, t_block.skip, rows=c_out, cols=c_in)
    _copy_bn(student.head_bn, teacher.head_bn, stream[-1])
    _copy_conv(student.head, teacher.head, rows=None, cols=stream[-1])


def _copy_conv(dst: nn.Conv2d, src: nn.Conv2d, rows: torch.Tensor | None, cols: torch.Tensor | None) -> None:
    """A dense (or pointwise) convolution's kept output ``rows`` and input ``cols`` (``None``: all)."""
    weight = src.weight if rows is None else src.weight[rows]
    dst.weight.copy_(weight if cols is None else weight[:, cols])
    if src.bias is not None:
        dst.bias.copy_(src.bias if rows is None else src.bias[rows])


def _copy_branch(dst: nn.Module, src: nn.Module, rows: torch.Tensor, cols: torch.Tensor) -> None:
    """A block's convolution: dense 3x3, or separable (depthwise then pointwise)."""
    if isinstance(src, nn.Conv2d):
        _copy_conv(dst, src, rows, cols)
        return
    depthwise, pointwise = src[0], src[1]
    k = depthwise.out_channels // depthwise.in_channels  # filters per input channel
    filters = (cols[:, None] * k + torch.arange(k)).flatten()  # the k filters of each kept input, in order
    dst[0].weight.copy_(depthwise.weight[filters])
    _copy_conv(dst[1], pointwise, rows, filters)


def _copy_bn(dst: nn.BatchNorm2d, src: nn.BatchNorm2d, keep: torch.Tensor) -> None:
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(dst, name).copy_(getattr(src, name)[keep])
    dst.num_batches_tracked.copy_(src.num_batches_tracked)
