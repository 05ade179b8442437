"""A ``Text`` space that async vector envs can pass through shared memory, exactly and fast.

This module holds :class:`Utf8Text` and its shared-memory functions, registered with Gymnasium's
``create_shared_memory`` / ``read_from_shared_memory`` / ``write_to_shared_memory`` (singledispatch), so
the plain ``gymnasium.make_vec(id, n, vectorization_mode="async")`` returns the same observations as
``"sync"``.

Why Gymnasium's own ``Text`` shared memory (1.4) does not work: ``AsyncVectorEnv`` calls
``read_from_shared_memory`` once, when it is built, and then hands out (a deep copy of) what it
returned after every ``reset``/``step``. That works for ``Box`` because the read is a live NumPy view of
the buffer; for ``Text`` the read decodes the buffer into Python strings right away, while the buffer is
still all zeros. Index 0 of our charset is ``"\\t"``, so every observation is ``max_length`` tabs, forever.
Its buffer is also one int32 per character, filled and decoded through Python loops over every
character (65,536 per field).

Here a buffer holds, per env, the UTF-8 bytes of the string and their count; a write is one
``memmove``; the read returns :class:`SharedTexts`, a live read-only sequence of the strings that
decodes on access and deep-copies (what ``AsyncVectorEnv`` returns with ``copy=True``, the default) to a
plain ``tuple`` of ``str`` — exactly what ``"sync"`` returns.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any, overload

from gymnasium import spaces
from gymnasium.vector.utils import create_shared_memory, read_from_shared_memory, write_to_shared_memory

__all__ = ["SharedTexts", "Utf8Text"]


class Utf8Text(spaces.Text):
    """``gymnasium.spaces.Text`` whose async-vector shared memory holds UTF-8 bytes with a length.

    It behaves like ``Text`` everywhere else (sampling, ``contains``, flattening, batching).

    >>> space = Utf8Text(max_length=8, min_length=0, charset="ab\\n")
    >>> space.contains("ab\\nba") and space.max_bytes
    8
    >>> buffer = create_shared_memory(space, n=2)
    >>> view = read_from_shared_memory(space, buffer, n=2)
    >>> write_to_shared_memory(space, 1, "a\\nb", buffer)
    >>> view[1], len(view), view == ("", "a\\nb")
    ('a\\nb', 2, True)
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_bytes = self.max_length * max(len(c.encode("utf-8")) for c in self.character_list)
        """Bytes reserved per string in shared memory (``max_length`` for an ASCII charset)."""


class SharedTexts(Sequence[str]):
    """The strings of one :class:`Utf8Text` field of ``n`` envs, read live from shared memory.

    Like the ``Box`` arrays of ``AsyncVectorEnv(copy=False)``, it shows the latest step's values;
    ``copy.deepcopy``, ``copy.copy`` and pickling give a plain ``tuple`` of ``str``.
    """

    __slots__ = ("_buffer", "_capacity", "_data", "_lengths", "_n")

    def __init__(self, space: Utf8Text, shared_memory: tuple[Any, Any], n: int) -> None:
        lengths, data = shared_memory
        self._buffer = shared_memory  # keeps the shared arrays alive
        self._lengths = lengths.get_obj()
        self._data = ctypes.addressof(data.get_obj())
        self._capacity = space.max_bytes
        self._n = n

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[str, ...]: ...
    def __getitem__(self, index: int | slice) -> str | tuple[str, ...]:
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(self._n)))
        if index < 0:
            index += self._n
        if not 0 <= index < self._n:
            raise IndexError(f"index {index} out of range for {self._n} envs")
        size = self._lengths[index]
        return ctypes.string_at(self._data + index * self._capacity, size).decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        return (self[i] for i in range(self._n))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SharedTexts | tuple):
            return tuple(self) == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # the values change under it

    def __deepcopy__(self, memo: dict[int, Any]) -> tuple[str, ...]:
        return tuple(self)

    def __copy__(self) -> tuple[str, ...]:
        return tuple(self)

    def __reduce__(self) -> tuple[type, tuple[tuple[str, ...]]]:
        return tuple, (tuple(self),)

    def __repr__(self) -> str:
        return f"SharedTexts({tuple(self)!r})"


@create_shared_memory.register(Utf8Text)
def _create_utf8_text_shared_memory(space: Utf8Text, n: int = 1, ctx: ModuleType = mp) -> tuple[Any, Any]:
    return ctx.Array("q", n), ctx.Array("B", n * space.max_bytes)


@read_from_shared_memory.register(Utf8Text)
def _read_utf8_text_from_shared_memory(space: Utf8Text, shared_memory: tuple[Any, Any], n: int = 1) -> SharedTexts:
    return SharedTexts(space, shared_memory, n)


@write_to_shared_memory.register(Utf8Text)
def _write_utf8_text_to_shared_memory(space: Utf8Text, index: int, value: str, shared_memory: tuple[Any, Any]) -> None:
    lengths, data = shared_memory
    encoded = str(value).encode("utf-8")
    if len(encoded) > space.max_bytes:
        raise ValueError(f"a text of {len(encoded)} UTF-8 bytes does not fit in {space} ({space.max_bytes} bytes)")
    ctypes.memmove(ctypes.addressof(data.get_obj()) + index * space.max_bytes, encoded, len(encoded))
    lengths.get_obj()[index] = len(encoded)
