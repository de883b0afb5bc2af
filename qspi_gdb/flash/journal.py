"""The kept-bytes journal: the bytes around an image that a flash erases and programs back
(read-modify-write of partly covered sectors), saved on the host before the erase.

A fault between the erase of such a sector and the programming of its kept bytes (power loss,
a reset, a stuck chip, a dropped link) would lose them: the flash there is erased or half
programmed, and a re-run would read that back as "the bytes to keep". So before the first erase
the programmer writes them here (flash offset, bytes, CRC32 each; the target's identity: board,
connection, JEDEC ID; a digest of the image) and fsyncs the file. A command that then fails
leaves the file; the re-run of the same command on the same target takes the kept bytes from it
instead of from the flash, rewrites those sectors, proves them by the target's CRC32 and
removes the file. A journal for another target or image, or one that does not check (CRC32),
is never applied: the command is refused and says how to discard it.

One file per target connection in the per-user state directory (`qspi_gdb.rundir.state_dir`,
mode 0700), each file mode 0600. Pure host logic: the target is reached by the programmer.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qspi_gdb import log
from qspi_gdb.errors import UsageError
from qspi_gdb.flash.ranges import Range
from qspi_gdb.inputs.image import Image
from qspi_gdb.rundir import state_dir

_log = log.get_logger(__name__)
FORMAT = "qspi-gdb kept-bytes journal"
VERSION = 1
SPOILED_CRC = -1  # a "CRC" no range can have: a journaled sector never counts as unchanged


def journal_path(target_id: str, where: Path | None = None) -> Path:
    """The journal file of one target connection (its identity hashed into the name)."""
    digest = hashlib.sha256(target_id.encode()).hexdigest()[:24]
    return (where or state_dir()) / f"kept-bytes-{digest}.json"


def image_digest(image: Image) -> str:
    """SHA-256 of the image's segments (offsets and data): 'the same command' on a re-run."""
    h = hashlib.sha256()
    for seg in image.segments:
        h.update(seg.offset.to_bytes(8, "little") + len(seg.data).to_bytes(8, "little"))
        h.update(seg.data)
    return h.hexdigest()


@dataclass(frozen=True)
class Identity:
    """Whose flash the kept bytes belong to."""

    board: str
    target: str  # the connection: virtual flash file, probe serial or interface, GDB server
    jedec_id: str

    def describe(self) -> str:
        return f"board {self.board}, {self.target}, JEDEC ID {self.jedec_id}"


@dataclass
class Journal:
    """The kept bytes of one target (entries: flash offset -> bytes, not overlapping)."""

    path: Path
    identity: Identity
    image: str  # image_digest of the command that saved them
    entries: dict[int, bytes] = field(default_factory=dict)

    # -- what the programmer asks ------------------------------------------------------------

    def ranges(self) -> list[Range]:
        return [Range(o, len(d)) for o, d in sorted(self.entries.items())]

    def spoil(self, ranges: Sequence[Range], crcs: Sequence[int | None]) -> list[int | None]:
        """The pre-read CRCs with every range touching a journaled byte made to mismatch, so the
        plan rewrites that sector whatever its image bytes hold."""
        saved = self.ranges()
        return [SPOILED_CRC if any(_overlap(r, s) for s in saved) else crc
                for r, crc in zip(ranges, crcs)]

    def overlay(self, fills: Sequence[Range], kept: Sequence[bytes]) -> list[bytes]:
        """The kept bytes read from the flash with every byte the journal holds taken from the
        journal instead (the flash there may be erased or half programmed)."""
        out = []
        for r, data in zip(fills, kept):
            buf = bytearray(data)
            for offset, saved in self.entries.items():
                lo, hi = max(r.offset, offset), min(r.end, offset + len(saved))
                if lo < hi:
                    buf[lo - r.offset:hi - r.offset] = saved[lo - offset:hi - offset]
            out.append(bytes(buf))
        return out

    def add(self, fills: Sequence[Range], kept: Sequence[bytes]) -> None:
        """Add kept ranges (already overlaid: where they meet saved bytes they agree)."""
        merged: dict[int, int] = {}
        for offset, data in [*self.entries.items(), *((r.offset, d) for r, d in zip(fills, kept))]:
            for i, byte in enumerate(data):
                merged.setdefault(offset + i, byte)
        self.entries = {}
        start = prev = None
        run = bytearray()
        for addr in sorted(merged):
            if prev is not None and addr != prev + 1:
                self.entries[start] = bytes(run)
                run = bytearray()
                start = None
            if start is None:
                start = addr
            run.append(merged[addr])
            prev = addr
        if start is not None:
            self.entries[start] = bytes(run)

    def crcs(self) -> list[int]:
        return [zlib.crc32(d) for _o, d in sorted(self.entries.items())]

    # -- the file ----------------------------------------------------------------------------

    def save(self) -> None:
        """Write the file (0600) and fsync it and its directory: on the disk before any erase."""
        body = {"format": FORMAT, "version": VERSION, "board": self.identity.board,
                "target": self.identity.target, "jedec_id": self.identity.jedec_id,
                "image_sha256": self.image,
                "entries": [{"offset": o, "length": len(d), "crc32": zlib.crc32(d),
                             "data": base64.b64encode(d).decode()}
                            for o, d in sorted(self.entries.items())]}
        body["crc32"] = _body_crc(body)
        tmp = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, json.dumps(body, indent=1).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        _log.info("bytes around the image saved before erasing", journal=str(self.path),
                  ranges=len(self.entries), bytes=sum(len(d) for d in self.entries.values()))

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def _overlap(a: Range, b: Range) -> bool:
    return a.offset < b.end and b.offset < a.end


def _body_crc(body: dict) -> int:
    rest = {k: v for k, v in body.items() if k != "crc32"}
    return zlib.crc32(json.dumps(rest, sort_keys=True).encode())


def _discard_hint(path: Path) -> str:
    return (f"pass --discard-journal (or delete {path}) to go on without them; the bytes it "
            "kept are lost then")


def parse(path: Path, text: str) -> Journal:
    """A journal file's contents; UsageError (naming the file and how to discard it) when it is
    not a journal or does not check (file CRC32, each entry's CRC32 and length)."""
    def corrupt(why: str) -> UsageError:
        return UsageError(f"the kept-bytes journal {path} is corrupt ({why}); nothing was "
                          f"written; {_discard_hint(path)}")

    try:
        body = json.loads(text)
        if body.get("format") != FORMAT or body.get("version") != VERSION:
            raise corrupt("not a version-1 qspi-gdb kept-bytes journal")
        if body.get("crc32") != _body_crc(body):
            raise corrupt("its CRC32 does not match")
        entries = {}
        for e in body["entries"]:
            data = base64.b64decode(e["data"], validate=True)
            if len(data) != e["length"] or zlib.crc32(data) != e["crc32"]:
                raise corrupt(f"the bytes at flash offset 0x{e['offset']:08X} fail their CRC32")
            entries[int(e["offset"])] = data
        identity = Identity(str(body["board"]), str(body["target"]), str(body["jedec_id"]))
        return Journal(path, identity, str(body["image_sha256"]), entries)
    except UsageError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise corrupt(f"unreadable: {exc}") from None


def open_journal(identity: Identity, image: Image, *, discard: bool = False,
                 where: Path | None = None) -> Journal:
    """This target's journal: a fresh, empty one, or the one an interrupted flash of the same
    image on the same target left (its bytes are restored by this run). A journal of another
    target (board or JEDEC ID) or image, or a corrupt one, is refused (UsageError, before
    anything is written) unless discard is set, which deletes it."""
    path = journal_path(identity.target, where)
    digest = image_digest(image)
    fresh = Journal(path, identity, digest)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return fresh
    except OSError as exc:
        raise UsageError(f"cannot read the kept-bytes journal {path}: {exc.strerror}") from exc
    if discard:
        path.unlink(missing_ok=True)
        _log.warning("kept-bytes journal discarded (the bytes it kept are lost)",
                     journal=str(path))
        return fresh
    found = parse(path, text)
    if found.identity != identity:
        raise UsageError(f"the kept-bytes journal {path} belongs to another target "
                         f"({found.identity.describe()}; this is {identity.describe()}); "
                         f"nothing was written; {_discard_hint(path)}")
    if found.image != digest:
        raise UsageError(f"the kept-bytes journal {path} holds bytes around another image "
                         "(an interrupted flash of a different file): re-run that flash to "
                         f"restore them; nothing was written; {_discard_hint(path)}")
    _log.warning("an interrupted flash left kept bytes in the journal; restoring them",
                 journal=str(path), ranges=len(found.entries))
    return found
