"""The one exception every dmaplane call raises."""
import os


class Error(OSError):
    """A dmaplane operation failed.

    An OSError, so ``errno`` and ``strerror`` work as for any system call;
    ``op`` names the operation (the UAPI command, e.g. ``ENDPOINT_CONNECT``)
    because one errno means different things from different calls. A POST
    that stopped part-way says how many operations went out in ``posted``.
    """

    def __init__(self, errno: int, op: str, posted: int | None = None) -> None:
        super().__init__(errno, os.strerror(errno))
        self.op = op
        self.posted = posted

    def __str__(self) -> str:
        return f"{self.op}: {self.strerror}"

    def __reduce__(self):
        return (type(self), (self.errno, self.op, self.posted))
