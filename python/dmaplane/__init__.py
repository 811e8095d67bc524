"""dmaplane from Python: NUMA-placed DMA buffers as zero-copy numpy and
torch views, dma-buf sharing, and RDMA endpoints with credit flow control.

    with dmaplane.Device() as dev, dev.buffer(1 << 20, huge=True) as buf:
        x = buf.torch(torch.float16, (512, 1024))

The UAPI's constants (``OP_WRITE``, ``BUF_HUGE``, ``CAP_VERBS``, ...) are
attributes of this module, taken from the header by the native extension.
"""
from . import _native
from .buffer import Buffer
from .device import Device
from .endpoint import MR, Completion, Endpoint, Op
from .errors import Error

globals().update({name: getattr(_native, name) for name in _native.CONSTANTS})

__all__ = ["Buffer", "Completion", "Device", "Endpoint", "Error", "MR", "Op",
           *_native.CONSTANTS]
