"""Reads the tensors of a PyTorch checkpoint without PyTorch: both the legacy format (a stream
of pickles followed by raw storages, torch < 1.6) and the zip format (data.pkl + data/N).

Only what a state dict of plain tensors needs is resolved (OrderedDict, _rebuild_tensor_v2 and
the storage types); any other global in the pickle is refused, so a checkpoint cannot run code."""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


@dataclass(frozen=True)
class _StorageType:
    name: str


class _Storage:
    def __init__(self, dtype: type, numel: int) -> None:
        self.dtype = np.dtype(dtype)
        self.numel = numel
        self.data: np.ndarray | None = None


@dataclass(frozen=True)
class _TensorRef:
    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    def array(self) -> np.ndarray:
        assert self.storage.data is not None
        item = self.storage.dtype.itemsize
        return np.lib.stride_tricks.as_strided(
            self.storage.data[self.offset :], shape=self.shape, strides=[s * item for s in self.stride]
        ).copy()


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *_rest):
    return _TensorRef(storage, storage_offset, tuple(size), tuple(stride))


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, storages: dict[str, _Storage], loader=None) -> None:
        super().__init__(file)
        self._storages = storages
        self._loader = loader

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refusing {module}.{name} in a checkpoint")

    def persistent_load(self, pid):
        kind, storage_type, key, _location, numel, *view = pid
        if kind != "storage" or (view and view[0] is not None):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        if key not in self._storages:
            self._storages[key] = _Storage(_STORAGE_DTYPES[storage_type.name], numel)
            if self._loader is not None:
                self._storages[key].data = self._loader(key, self._storages[key])
        return self._storages[key]


class _NoGlobals(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"refusing {module}.{name} in a checkpoint header")


def read_state_dict(path: Path) -> dict[str, np.ndarray]:
    """The checkpoint's tensors by name, as numpy arrays (scalars such as num_batches_tracked too)."""
    data = path.read_bytes()
    if zipfile.is_zipfile(io.BytesIO(data)):
        return _read_zip(data)
    return _read_legacy(io.BytesIO(data))


def _arrays(obj) -> dict[str, np.ndarray]:
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ValueError("the checkpoint does not hold a state dict")
    return {name: ref.array() for name, ref in obj.items() if isinstance(ref, _TensorRef)}


def _read_legacy(file: io.BytesIO) -> dict[str, np.ndarray]:
    if _NoGlobals(file).load() != _LEGACY_MAGIC:
        raise ValueError("not a PyTorch checkpoint (bad magic number)")
    _NoGlobals(file).load()  # protocol version
    info = _NoGlobals(file).load()
    if not info.get("little_endian", True):
        raise ValueError("big-endian checkpoints are not supported")
    storages: dict[str, _Storage] = {}
    obj = _Unpickler(file, storages).load()
    for key in _NoGlobals(file).load():
        storage = storages[key]
        (numel,) = struct.unpack("<q", file.read(8))
        if numel != storage.numel:
            raise ValueError(f"storage {key}: {numel} elements on disk, {storage.numel} announced")
        raw = file.read(numel * storage.dtype.itemsize)
        storage.data = np.frombuffer(raw, dtype=storage.dtype)
    return _arrays(obj)


def _read_zip(data: bytes) -> dict[str, np.ndarray]:
    archive = zipfile.ZipFile(io.BytesIO(data))
    names = archive.namelist()
    root = names[0].split("/")[0]

    def load(key: str, storage: _Storage) -> np.ndarray:
        return np.frombuffer(archive.read(f"{root}/data/{key}"), dtype=storage.dtype)

    with archive.open(f"{root}/data.pkl") as pkl:
        obj = _Unpickler(io.BytesIO(pkl.read()), {}, loader=load).load()
    return _arrays(obj)
