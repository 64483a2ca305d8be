"""7z archives through `py7zr` (optional, `modelshield[formats]`), and RAR as an unsupported container.

Members are decompressed by py7zr into spools (never to disk) under the decompression budgets and
dispatched back through the sniffer. Encrypted archives and members are inconclusive: 7z is how
the nullifAI models hid their pickles from the Hub's scanner, so "could not open" is never clean.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..blob import Blob, SpoolBlob
from ..errors import BudgetExceeded
from ..findings import FormatName, Severity
from .zip import add_at, link_hazard, path_hazard
from ..errors import ArchiveBomb

if TYPE_CHECKING:
    from ..context import ScanContext

NAME = FormatName.SEVENZIP
SEVENZIP = b"7z\xbc\xaf\x27\x1c"
RAR = b"Rar!\x1a\x07"


def sniff(head: bytes, blob: Blob, name: str) -> bool:
    """7z signature header, or a RAR 4/5 marker."""
    return head.startswith((SEVENZIP, RAR))


def _writer_classes(py7zio: Any) -> tuple[type, type]:
    """A py7zr writer factory whose products write into budget-charged spools."""

    class SpoolWriter(py7zio.Py7zIO):
        def __init__(self, name: str, owner: "SpoolFactory") -> None:
            self.name, self.owner = name, owner
            self.spool = SpoolBlob(name)

        def write(self, s: bytes | bytearray) -> int:
            self.owner.ctx.check_time()
            self.spool.write(bytes(s))
            self.owner.produced += len(s)
            try:
                self.owner.ctx.charge_decompressed(len(s))
            except BudgetExceeded as exc:
                if exc.budget == "max_seconds":
                    raise
                raise ArchiveBomb(exc.budget, exc.limit) from None
            budgets = self.owner.ctx.budgets
            if self.owner.produced > budgets.ratio_floor and \
                    self.owner.produced > self.owner.compressed * budgets.max_ratio:
                raise ArchiveBomb("max_ratio", budgets.max_ratio)
            return len(s)

        def read(self, size: int | None = None) -> bytes:
            return b""

        def seek(self, offset: int, whence: int = 0) -> int:
            return self.spool.size

        def flush(self) -> None:
            pass

        def size(self) -> int:
            return self.spool.size

    class SpoolFactory(py7zio.WriterFactory):
        def __init__(self, ctx: "ScanContext", compressed: int) -> None:
            self.ctx, self.compressed, self.produced = ctx, max(compressed, 1), 0
            self.products: dict[str, SpoolWriter] = {}

        def create(self, filename: str) -> SpoolWriter:
            product = SpoolWriter(filename, self)
            old = self.products.get(filename)
            if old is not None:
                old.spool.close()
            self.products[filename] = product
            return product

    return SpoolWriter, SpoolFactory


def analyse(blob: Blob, ctx: "ScanContext") -> None:
    """RAR: unsupported (inconclusive). 7z: list, check hazards, extract to spools, dispatch."""
    label = ctx.members[-1] if ctx.members else (blob.name or ctx.artefact.path)
    if blob.head(8).startswith(RAR):
        ctx.add("MS-ARC-014", name=label, what="the RAR container")
        return
    try:
        import py7zr
        import py7zr.io as py7zio
    except ImportError:
        ctx.add("MS-ARC-015", what="7z", package="py7zr")
        return
    try:
        archive = py7zr.SevenZipFile(blob.reader(), mode="r")
    except BudgetExceeded:
        raise
    except Exception as exc:  # noqa: BLE001 - py7zr raises many types for hostile headers
        if "password" in str(exc).lower() or type(exc).__name__ == "PasswordRequired":
            ctx.add("MS-ARC-005", name=label, how="7z header encryption")
        else:
            ctx.add("MS-ARC-013", name=label, what=f"unreadable 7z headers ({type(exc).__name__}: {exc})")
        return
    with archive:
        try:
            infos = archive.list()
        except Exception as exc:  # noqa: BLE001
            ctx.add("MS-ARC-013", name=label, what=f"unreadable 7z file list ({type(exc).__name__}: {exc})")
            return
        if len(infos) > ctx.budgets.max_members:
            raise BudgetExceeded("max_members", ctx.budgets.max_members)
        for info in infos:
            why = path_hazard(info.filename)
            if why:
                add_at(ctx, info.filename, "MS-ARC-001", name=info.filename, why=why)
        if archive.needs_password():
            ctx.add("MS-ARC-005", name=label, how="7z AES encryption")
            return
        _, factory_cls = _writer_classes(py7zio)
        factory = factory_cls(ctx, blob.size)
        try:
            try:
                archive.extract(factory=factory)
            except ArchiveBomb as bomb:
                ctx.add("MS-ARC-006", name=label, cap=bomb.cap, limit=bomb.limit, produced=factory.produced,
                        consumed=blob.size)
            except BudgetExceeded:
                raise
            except Exception as exc:  # noqa: BLE001 - CRC errors, corrupt streams: analyse what came out
                ctx.add("MS-ARC-013", name=label, what=f"7z extraction stopped ({type(exc).__name__}: {exc})")
            links = {i.filename for i in infos if getattr(i, "is_symlink", False)}
            for name, product in factory.products.items():
                if name in links:
                    target = product.spool.read_at(0, 1024).decode("utf-8", "replace")
                    add_at(ctx, name, "MS-ARC-002", name=name, link_target=target,
                           severity=Severity.HIGH if link_hazard(target) else None)
                    continue
                try:
                    ctx.descend(product.spool, name)
                except BudgetExceeded as exc:
                    if exc.budget not in ("max_container_depth", "max_nested_depth"):
                        raise
                    add_at(ctx, name, "MS-GEN-005", budget=exc.budget, limit=exc.limit)
            if not ctx.members:
                ctx.artefact.properties["sevenzip"] = {"entries": len(infos), "extracted": len(factory.products)}
        finally:
            for product in factory.products.values():
                product.spool.close()
