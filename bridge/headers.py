"""Headers: a delivery's request headers, case-insensitive, repeats kept, free of any web framework."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

RawHeaders = Sequence[tuple[bytes, bytes]]


class Headers(Mapping[str, str]):
    """Immutable request headers: names lower-cased, values decoded as latin-1 (as HTTP/1.1 and ASGI carry them).

    `raw` keeps the bytes in arrival order, repeats included, so a dead letter can be replayed with
    exactly the headers that came with it. Lookups answer the first value; `getlist` all of them.
    """

    __slots__ = ("_raw",)

    def __init__(self, headers: Mapping[str, str] | None = None, *, raw: RawHeaders | None = None) -> None:
        pairs = [(name.lower(), value) for name, value in raw or ()]
        pairs += [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in (headers or {}).items()]
        self._raw: tuple[tuple[bytes, bytes], ...] = tuple(pairs)

    @property
    def raw(self) -> list[tuple[bytes, bytes]]:
        return list(self._raw)

    def getlist(self, name: str) -> list[str]:
        wanted = name.lower().encode("latin-1")
        return [value.decode("latin-1") for key, value in self._raw if key == wanted]

    def __getitem__(self, name: str) -> str:
        values = self.getlist(name)
        if not values:
            raise KeyError(name)
        return values[0]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(self.getlist(name))

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(key.decode("latin-1") for key, _ in self._raw))

    def __len__(self) -> int:
        return len({key for key, _ in self._raw})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._raw == other._raw

    def __hash__(self) -> int:
        return hash(self._raw)

    def __repr__(self) -> str:
        return f"Headers(raw={list(self._raw)!r})"
