"""Data-parallel training across processes with MPI (mpi4py).

Run the same script under ``mpiexec -n N`` and call
``net.fit(..., distributed=True)``. Every rank holds the whole model; each
takes its shard of every global batch (the global batch is what
``batch_size`` says), computes the mean gradient over its rows, and one
allreduce per step sums the gradients weighted by ``rows / global rows``, so
uneven shards (the last batch) count exactly as in single-process training.
Initial weights are broadcast from rank 0; shuffling is identical on every
rank because it comes from the shared seed; training metrics are reduced
once per epoch; only rank 0 shows progress and writes files.

Gradients travel as the network's one flat buffer. On the host backends
(NumPy) the buffer goes to MPI as it is; other libraries go through the
host, except CuPy, which passes device buffers to a CUDA-aware MPI
(``POLYMLP_MPI_CUDA_AWARE=1``), else uses NCCL (``cupy.cuda.nccl``), else
the host (one device-to-host and one host-to-device copy of the gradient
per step).

This module is an edge module: it may name libraries and use NumPy.
"""

from __future__ import annotations

import os
import sys
import time

import numpy

from ._array_api import to_numpy


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as exc:
        from ._install import install_hint

        raise ImportError("Distributed training needs mpi4py and an MPI library: "
                          f"{install_hint('mpi')}") from exc
    return MPI


class DataParallel:
    """Data parallelism over an MPI communicator.

    Parameters
    ----------
    comm : mpi4py communicator, optional
        Defaults to ``MPI.COMM_WORLD``.
    gpu_transport : {"auto", "mpi", "nccl", "host"}
        How CuPy gradients are reduced: ``"mpi"`` hands device buffers to a
        CUDA-aware MPI, ``"nccl"`` uses ``cupy.cuda.nccl``, ``"host"`` copies
        through host memory. ``"auto"`` picks ``"mpi"`` when
        ``POLYMLP_MPI_CUDA_AWARE=1``, else NCCL when available, else host.
    """

    def __init__(self, comm=None, gpu_transport="auto"):
        if gpu_transport not in ("auto", "mpi", "nccl", "host"):
            raise ValueError("`gpu_transport` must be 'auto', 'mpi', 'nccl' or 'host'; "
                             f"got {gpu_transport!r}.")
        MPI = _mpi()
        self.MPI = MPI
        self.comm = comm if comm is not None else MPI.COMM_WORLD
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.gpu_transport = gpu_transport
        self._transport = None
        self._nccl = None
        self.allreduce_seconds = 0.0  # time spent in gradient/metric reductions
        if self.size > 1:
            _abort_on_uncaught_exception(self.comm)

    @property
    def is_root(self):
        return self.rank == 0

    # --- set-up -----------------------------------------------------------------

    def setup(self, backend):
        """Choose the gradient transport for `backend` (called once per fit)."""
        self.backend = backend
        if backend.name != "cupy":
            self._transport = "buffer" if backend.name == "numpy" else "host"
            return
        choice = self.gpu_transport
        if choice == "auto":
            if os.environ.get("POLYMLP_MPI_CUDA_AWARE", "") == "1":
                choice = "mpi"
            else:
                choice = "nccl" if _nccl_available() else "host"
        if choice == "nccl":
            self._nccl = self._make_nccl()
        self._transport = {"mpi": "buffer", "nccl": "nccl", "host": "host"}[choice]

    def _make_nccl(self):
        from cupy.cuda import nccl

        uid = nccl.get_unique_id() if self.is_root else None
        uid = self.comm.bcast(uid, root=0)
        return nccl.NcclCommunicator(self.size, uid, self.rank)

    def broadcast(self, array):
        """Rank 0's copy of `array` on every rank (through the host: once per fit)."""
        host = numpy.ascontiguousarray(to_numpy(array))
        self.comm.Bcast(host, root=0)
        return self.backend.asarray(host)

    def check_same(self, value, what):
        """Raise on every rank unless all ranks agree on `value` (e.g. the data size)."""
        values = self.comm.allgather(value)
        if any(v != values[0] for v in values):
            raise ValueError(f"Ranks disagree on {what}: {values}. Every rank must call fit "
                             f"with the same data, batch size and epochs.")

    # --- per step ---------------------------------------------------------------

    def shard(self, start, stop):
        """This rank's rows ``[lo, hi)`` of the global batch ``[start, stop)`` and its weight."""
        rows = stop - start
        lo = start + (rows * self.rank) // self.size
        hi = start + (rows * (self.rank + 1)) // self.size
        return lo, hi, (hi - lo) / rows

    def allreduce(self, array):
        """Elementwise sum of `array` over all ranks, on the array's backend."""
        t0 = time.perf_counter()
        out = self._allreduce(array)
        self.allreduce_seconds += time.perf_counter() - t0
        return out

    def _allreduce(self, array):
        if self._transport == "buffer":
            out = self.backend.xp.empty_like(array)
            self.comm.Allreduce(array, out, op=self.MPI.SUM)
            return out
        if self._transport == "nccl":
            import cupy
            from cupy.cuda import nccl

            out = cupy.empty_like(array)
            dtype = {numpy.dtype("float32"): nccl.NCCL_FLOAT32,
                     numpy.dtype("float64"): nccl.NCCL_FLOAT64}[numpy.dtype(array.dtype)]
            self._nccl.allReduce(array.data.ptr, out.data.ptr, array.size, dtype,
                                 nccl.NCCL_SUM, cupy.cuda.get_current_stream().ptr)
            return out
        host = numpy.ascontiguousarray(to_numpy(array))
        out = numpy.empty_like(host)
        self.comm.Allreduce(host, out, op=self.MPI.SUM)
        return self.backend.asarray(out)

    def abort(self, exc):
        """End every rank of the job after an error on this one (no rank may hang)."""
        sys.stderr.write(f"polymlp.distributed: rank {self.rank} of {self.size} failed: "
                         f"{type(exc).__name__}: {exc}; aborting the MPI job.\n")
        sys.stderr.flush()
        time.sleep(0.2)  # let the launcher forward this rank's output before the abort
        self.comm.Abort(1)


_HOOKED = []


def _abort_on_uncaught_exception(comm):
    """Make an uncaught exception on any rank end the whole job instead of hanging it.

    (What ``python -m mpi4py script.py`` does; installed once per process.)
    """
    if _HOOKED:
        return
    previous = sys.excepthook

    def hook(kind, value, tb):
        sys.stderr.write(f"polymlp.distributed: uncaught {kind.__name__} on rank "
                         f"{comm.Get_rank()}; aborting the MPI job.\n")
        previous(kind, value, tb)
        sys.stderr.flush()
        time.sleep(0.2)  # let the launcher forward this rank's output before the abort
        comm.Abort(1)

    sys.excepthook = hook
    _HOOKED.append(hook)


def _nccl_available():
    try:
        from cupy.cuda import nccl  # noqa: F401

        return True
    except Exception:  # noqa: BLE001 - any failure means no NCCL
        return False


def resolve(distributed):
    """A :class:`DataParallel` from fit's `distributed` argument, or None."""
    if distributed is None or distributed is False:
        return None
    if distributed is True:
        return DataParallel()
    if isinstance(distributed, DataParallel):
        return distributed
    raise TypeError("`distributed` must be True, False, or a polymlp.distributed.DataParallel; "
                    f"got {distributed!r}.")
