"""FSDP for training (PyTorch's `fully_shard`): parameters, gradients, optimiser state and the EMA split across the
processes, so that each GPU holds 1/N of them; the 20B configuration needs that (fp32 weights, gradients, AdamW's two
moments and the EMA: 20 bytes a parameter). Whole tensors are gathered back only for checkpoint files (the same file
as an unsharded run's; checkpoint folders take each process's shard as it is, `train_checkpoints`) and for the
exported model's EMA weights."""

from __future__ import annotations

import torch
from torch.distributed.tensor import DTensor, distribute_tensor


def shard(model: torch.nn.Module, device: torch.device, bf16: bool = False) -> None:
    """Shard `model` in place over every process. Each RaxelsBlock (both streams' layer) is one unit, gathered for
    its forward and again for its backward, then freed; the embeddings and heads are the root's unit. The first
    process's weights are the model's: the others may have built theirs on the meta device, and each gets its part
    of the first one's.

    bf16 (a run under bf16 autocast): the weights are gathered in bf16, half the traffic and memory, and the
    gradients reduced in fp32 into the fp32 shards. The blocks' inputs are not cast: RoPE's cos/sin tables and the
    timestep modulation stay fp32, as autocast leaves them."""
    import torch.distributed as dist
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    state = model.state_dict()
    if any(name not in state for name, _ in model.named_buffers()):
        raise ValueError("FSDP: the model has buffers outside its state dict, which a meta-device build leaves empty")
    weights = {k: v.detach() for k, v in state.items()} if dist.get_rank() == 0 else {}
    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    policy = MixedPrecisionPolicy()  # FSDP's default: gathered as stored, fp32
    if bf16:
        policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32, cast_forward_inputs=False)
    for block in model.blocks:
        fully_shard(block, mesh=mesh, mp_policy=policy)
    fully_shard(model, mesh=mesh, mp_policy=policy)
    if any(p.is_meta for p in model.parameters()):
        model.to_empty(device=device)
    options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True)
    set_model_state_dict(model, weights, options=options)


def whole_on_cpu(tensors: dict, keep: bool) -> dict:
    """{name: the whole tensor, on the CPU} where `keep`, {} elsewhere. Under FSDP each shard's gather is a
    collective: every process calls this with the same names in the same order, and only one keeps the result."""
    out = {}
    for name, value in tensors.items():
        value = value.detach()
        value = value.full_tensor() if isinstance(value, DTensor) else value
        if keep:
            out[name] = value.cpu().contiguous()
    return out


def split_like(value: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """A whole tensor split the way `ref` is (unchanged if `ref` is not a shard): every process holds `value` and
    keeps its own part, so nothing is sent."""
    if isinstance(ref, DTensor) and value.shape == ref.shape:
        return distribute_tensor(value.to(ref.device), ref.device_mesh, ref.placements, src_data_rank=None)
    return value
