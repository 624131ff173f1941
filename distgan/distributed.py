"""Leaving the process group at the end of a CLI command, once, the same way everywhere."""

from __future__ import annotations


def leave_process_group() -> None:
    """Destroys the default process group if one is up.

    Exiting with the gloo group alive can abort the process at interpreter teardown
    ("terminate called without an active exception"), turning a finished run into a crash.
    DDP's reducer holds the group too, so the trainer is collected first.
    """
    import gc

    import torch.distributed as dist  # here: the CLIs import this module before torch is needed

    gc.collect()
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
