"""The VM's fast path: the frequent opcodes run inline, straight from the read window.

`Machine._step` is the reference: every opcode through the opcode table (`read_arg` and an
`op_*` handler). `run` gives exactly the same results for the opcodes it inlines and hands
everything else back: opcodes without an inline form go through the same table (their argument
read by `opcodes.BUFFER_READERS`, their handler called as `_step` would), and anything unusual
(an argument past the end of what the loop holds, an invalid argument, any error condition, a
window or frame boundary, a budget check point) returns to `_step`, which raises the loader's
error at the loader's position. The property tests run both paths and compare
(tests/pickle/test_pickle_vm_paths.py).

Why one long function: in CPython every call and attribute lookup costs in a loop that runs
tens of millions of times, so the state lives in locals, the opcodes are found by a small
decision tree on the opcode byte, and a push that the pickler memoises runs together with its
MEMOIZE. The loop reads a *chunk*: the bytes from the current opcode to the next boundary (frame
end, window end, at most CHUNK bytes), as bytes (for `struct` and `decode`) and as a list of ints
(indexing a list is specialised by the interpreter, indexing bytes is not). Reading past the
chunk's end raises IndexError / struct.error, which ends the loop, so there is no bounds check
per opcode: every inline opcode reads all its argument bytes before it changes any state.
`p` stays on the current opcode until it is done, so giving up on an opcode is `break`.
"""
from __future__ import annotations

from struct import Struct
from struct import error as StructError
from typing import TYPE_CHECKING

from . import values as V
from .memo import MISSING
from .opcodes import SPAN_CAP, STR_CODES
from .values import MAX_NAMES

if TYPE_CHECKING:
    from .machine import Machine

_I32, _U32, _F64 = (Struct(f).unpack_from for f in ("<i", "<I", ">d"))
CHUNK = 1 << 16  # bytes turned into a list of ints at a time (~3 ns a byte)


def _chunk(m: "Machine") -> tuple[bytes, list[int], int, int] | None:
    """(bytes, ints, blob offset of both, blob offset of the boundary) from the reader's position,
    or None when the loop cannot start here (outside the window, at a boundary)."""
    r = m.r
    buf = r.buf
    wbase = r.buf_start
    q = r.pos - wbase
    limit = m._limit(wbase, len(buf))
    if q < 0 or q >= limit:
        return None
    cached = m.fast_chunk
    if cached is not None and cached[0] is buf and cached[1] <= r.pos < cached[1] + len(cached[2]) \
            and cached[1] + len(cached[2]) <= wbase + limit:
        return cached[2], cached[3], cached[1], wbase + limit
    end = min(limit, q + CHUNK)
    cb = buf[q:end]
    bl = list(cb)
    m.fast_chunk = (buf, wbase + q, cb, bl)
    return cb, bl, wbase + q, wbase + limit


def run(m: "Machine") -> bool:  # noqa: C901 - see the module docstring
    """Run opcodes from `m`'s read window; True at STOP, False to hand over to `m._step`."""
    memo = m.memo
    if memo.reread is None:  # (memo codes of strings are their offsets: only with re-reading)
        return False
    got = _chunk(m)
    if got is None:
        return False
    cb, bl, base, bound = got
    r = m.r
    p = r.pos - base
    out = m.out
    stack = m.stack
    push = stack.append
    marks = m.marks
    full = memo.full
    tail = memo.tail
    exact = min(memo.exact, m.max_memo)
    max_memo = m.max_memo
    tuple_codes, call_codes = memo.tuple_codes, memo.call_codes
    table = m.table
    ops = out.opcodes
    extra = 0  # MEMOIZEs run together with the push before them
    # no opcode grows the stack plus the marks by more than one: up to `stop_at` neither the
    # opcode budget, nor the time check point, nor the depth budget can be reached
    stop_at = min(m.max_opcodes, ops | 0xFFFF, ops + m.max_depth - len(stack) - len(marks))
    fence = marks[-1] if marks else 0
    last_str, last_end = m.last_str - base, m.last_str_end - base  # the last str/bytes push
    code = op_start = 0
    synced = False  # m.r.pos and the counters are up to date (a handler is running)
    PList, PDict, PSet, Call, Global = V.PList, V.PDict, V.PSet, V.Call, V.Global
    new = object.__new__
    keep, keep2, missing = V.KEEP, 2 * V.KEEP, MISSING
    i32, u32, f64 = _I32, _U32, _F64
    calls = out.calls
    constrained = m.constrained
    generic = missing  # `v` when the opcode is not one the loop runs inline
    v = mk = generic
    # the compact memo's dense tail takes the next MEMOIZE (`cap`: entries it may still take)
    dense = memo.dense_next()
    cap = max_memo - memo.tail_base
    try:
        while True:  # one chunk after another
            cn = len(cb)
            ended = False  # stopped at the chunk's end (an IndexError / struct.error / short read)
            moved = False  # a handler moved the reader or changed the boundary
            try:
                # one pass runs at most three opcodes (BINGET, the push after it, its MEMOIZE: extra <=
                # 2 * (opcodes passed)), so passing a third of the way to `stop_at` keeps ops + extra <=
                # stop_at at every opcode; the passes are counted in blocks of at most 256, so that the
                # loop variable is a small int (CPython allocates larger ones)
                ops += extra
                extra = 0
                end_ops = ops + (stop_at - ops - 1) // 3
                i = -1
                while True:
                    block = min(end_ops - ops, 256)
                    for i in range(block):  # this opcode is number ops + i + 1
                        # One flat chain, the frequent opcodes first; a push the pickler memoises runs its
                        # MEMOIZE too. A test before a long branch is written `if code != X: pass / else:`:
                        # its jump then stays short and the interpreter specialises the comparison (a long
                        # jump needs EXTENDED_ARG, which turns that off). Rare conditions raise IndexError
                        # (the loop hands the opcode to `_step`) or fall through to the opcode table.
                        code = bl[p]
                        if code != 0x68:
                            pass
                        else:  # BINGET (a dict key, mostly: the value pushed after it runs here too)
                            try:
                                push(full[bl[p + 1]])
                            except KeyError:
                                v = memo.get(bl[p + 1])
                                if v is missing:
                                    i -= 1
                                    break
                                push(v)
                            p += 2
                            try:
                                code = bl[p]
                                if code != 0x8c:
                                    pass
                                else:  # SHORT_BINUNICODE, as below
                                    end = p + 2 + bl[p + 1]
                                    if end > cn:
                                        continue
                                    try:
                                        v = cb[p + 2:end].decode()
                                    except UnicodeDecodeError:
                                        continue
                                    push(v)
                                    last_str = p
                                    p = last_end = end
                                    extra += 1
                                    try:
                                        if bl[p] != 0x94:
                                            continue
                                    except IndexError:
                                        continue  # (the next opcode is in the next chunk)
                                    if dense and len(tail) < cap:
                                        tail.append(base + last_str + 1)
                                    elif not tail and len(full) < exact:
                                        full[len(full)] = v
                                    elif len(full) + len(tail) < max_memo:
                                        memo.put(len(full) + len(tail), v, last_str + base if last_end == p else None)
                                        dense = memo.dense_next()
                                        cap = max_memo - memo.tail_base
                                    else:
                                        continue  # (the MEMOIZE runs on its own: `_step` raises the budget)
                                    p += 1
                                    extra += 1
                                    continue
                                if code != 0x43:
                                    pass
                                else:  # SHORT_BINBYTES, as below
                                    end = p + 2 + bl[p + 1]
                                    if end > cn:
                                        continue
                                    v = cb[p + 2:end]
                                    push(v)
                                    last_str = p
                                    p = last_end = end
                                    extra += 1
                                    try:
                                        if bl[p] != 0x94:
                                            continue
                                    except IndexError:
                                        continue  # (the next opcode is in the next chunk)
                                    if dense and len(tail) < cap:
                                        tail.append(base + last_str + 1)
                                    elif not tail and len(full) < exact:
                                        full[len(full)] = v
                                    elif len(full) + len(tail) < max_memo:
                                        memo.put(len(full) + len(tail), v, last_str + base if last_end == p else None)
                                        dense = memo.dense_next()
                                        cap = max_memo - memo.tail_base
                                    else:
                                        continue  # (the MEMOIZE runs on its own: `_step` raises the budget)
                                    p += 1
                                    extra += 1
                                    continue
                                if code == 0x47:  # BINFLOAT
                                    push(f64(cb, p + 1)[0])
                                    p += 9
                                elif code == 0x4a:  # BININT
                                    push(i32(cb, p + 1)[0])
                                    p += 5
                                elif code == 0x88:  # NEWTRUE
                                    push(True)
                                    p += 1
                                elif code == 0x89:  # NEWFALSE
                                    push(False)
                                    p += 1
                                elif code == 0x29:  # EMPTY_TUPLE
                                    push(())
                                    p += 1
                                elif code == 0x4d:  # BININT2
                                    push(bl[p + 1] | bl[p + 2] << 8)
                                    p += 3
                                elif code == 0x4b:  # BININT1
                                    push(bl[p + 1])
                                    p += 2
                                elif code == 0x4e:  # NONE
                                    push(None)
                                    p += 1
                                else:
                                    continue
                                extra += 1
                            except (IndexError, StructError):
                                pass  # (the next opcode is in the next chunk)
                            continue
                        if code != 0x8c:
                            pass
                        else:  # SHORT_BINUNICODE
                            end = p + 2 + bl[p + 1]
                            if end > cn:
                                raise IndexError
                            try:
                                v = cb[p + 2:end].decode()
                            except UnicodeDecodeError:
                                v = generic  # (surrogates, invalid UTF-8: the opcode table's reader)
                            if v is not generic:
                                push(v)
                                last_str = p
                                p = last_end = end
                                try:
                                    if bl[p] != 0x94:
                                        continue
                                except IndexError:
                                    continue  # (the next opcode is in the next chunk)
                                if dense and len(tail) < cap:
                                    tail.append(base + last_str + 1)
                                elif not tail and len(full) < exact:
                                    full[len(full)] = v
                                elif len(full) + len(tail) < max_memo:
                                    memo.put(len(full) + len(tail), v, last_str + base if last_end == p else None)
                                    dense = memo.dense_next()
                                    cap = max_memo - memo.tail_base
                                else:
                                    continue  # (the MEMOIZE runs on its own: `_step` raises the budget)
                                p += 1
                                extra += 1
                                continue
                        if code == 0x47:  # BINFLOAT
                            push(f64(cb, p + 1)[0])
                            p += 9
                            continue
                        if code != 0x86:
                            pass
                        else:  # TUPLE2
                            if len(stack) - 2 < fence:
                                i -= 1
                                break
                            v = stack[-1] = (stack[-2], stack.pop())
                            p += 1
                            try:
                                if bl[p] != 0x94:
                                    continue
                            except IndexError:
                                continue  # (the next opcode is in the next chunk)
                            if dense and len(tail) < cap and (mk := tuple_codes.get(2)) is not None:
                                tail.append(mk)
                            elif not tail and len(full) < exact:
                                full[len(full)] = v
                            elif len(full) + len(tail) < max_memo:
                                memo.put(len(full) + len(tail), v, last_str + base if last_end == p else None)
                                dense = memo.dense_next()
                                cap = max_memo - memo.tail_base
                            else:
                                continue  # (the MEMOIZE runs on its own: `_step` raises the budget)
                            p += 1
                            extra += 1
                            continue
                        if code != 0x52:
                            pass
                        else:  # REDUCE of an allowed callable with an argument tuple
                            f = stack[-2]
                            if type(f) is not Global or not f.plain or type(stack[-1]) is not tuple \
                                    or len(stack) - 2 < fence or constrained:
                                pass  # (the opcode table)
                            else:
                                v = new(Call)
                                v.func, v.args, v.kwargs, v.offset, v.opcode = f, stack.pop(), None, base + p, "REDUCE"
                                v.state = None
                                stack[-1] = v
                                calls.append(f.full)
                                p += 1
                                try:
                                    if bl[p] != 0x94:
                                        continue
                                except IndexError:
                                    continue  # (the next opcode is in the next chunk)
                                if dense and len(tail) < cap and (mk := call_codes.get(id(f))) is not None:
                                    tail.append(mk)
                                elif not tail and len(full) < exact:
                                    full[len(full)] = v
                                elif len(full) + len(tail) < max_memo:
                                    memo.put(len(full) + len(tail), v, last_str + base if last_end == p else None)
                                    dense = memo.dense_next()
                                    cap = max_memo - memo.tail_base
                                else:
                                    continue  # (the MEMOIZE runs on its own: `_step` raises the budget)
                                p += 1
                                extra += 1
                                continue
                        if code == 0x28:  # MARK
                            fence = len(stack)
                            marks.append(fence)
                            p += 1
                            continue
                        if code != 0x7d:
                            pass
                        else:  # EMPTY_DICT
                            v = new(PDict)
                            v.flat, v.size, v.over = [], 0, None
                            push(v)
                            p += 1
                            try:
                                if bl[p] != 0x94:
                                    continue
                            except IndexError:
                                continue  # (the next opcode is in the next chunk)
                            if dense and len(tail) < cap:
                                tail.append(-1)
                            elif not tail and len(full) < exact:
                                full[len(full)] = v
                            elif len(full) + len(tail) < max_memo:
                                memo.put(len(full) + len(tail), v, last_str + base if last_end == p else None)
                                dense = memo.dense_next()
                                cap = max_memo - memo.tail_base
                            else:
                                continue  # (the MEMOIZE runs on its own: `_step` raises the budget)
                            p += 1
                            extra += 1
                            continue
                        if code != 0x75:
                            pass
                        else:  # SETITEMS into a dict or an allowed class's object (IndexError: no MARK / item)
                            k = marks[-1]
                            target = stack[k - 1]
                            n = len(stack) - k
                            if type(target) is PDict:
                                if k and not n & 1 and len(target.flat) + n <= keep2:
                                    target.flat += stack[k:]
                                    target.size += n >> 1
                                    del stack[k:]
                                    marks.pop()
                                    fence = marks[-1] if marks else 0
                                    p += 1
                                    continue
                            elif type(target) is Call and type(target.func) is Global and target.func.plain and k \
                                    and not constrained:
                                del stack[k:]
                                marks.pop()
                                fence = marks[-1] if marks else 0
                                p += 1
                                continue
                        if code == 0x4a:  # BININT
                            push(i32(cb, p + 1)[0])
                            p += 5
                            continue
                        if code == 0x88:  # NEWTRUE
                            push(True)
                            p += 1
                            continue
                        if code != 0x43:
                            pass
                        else:  # SHORT_BINBYTES
                            end = p + 2 + bl[p + 1]
                            if end > cn:
                                raise IndexError
                            v = cb[p + 2:end]
                            push(v)
                            last_str = p
                            p = last_end = end
                            try:
                                if bl[p] != 0x94:
                                    continue
                            except IndexError:
                                continue  # (the next opcode is in the next chunk)
                            if dense and len(tail) < cap:
                                tail.append(base + last_str + 1)
                            elif not tail and len(full) < exact:
                                full[len(full)] = v
                            elif len(full) + len(tail) < max_memo:
                                memo.put(len(full) + len(tail), v, last_str + base if last_end == p else None)
                                dense = memo.dense_next()
                                cap = max_memo - memo.tail_base
                            else:
                                continue  # (the MEMOIZE runs on its own: `_step` raises the budget)
                            p += 1
                            extra += 1
                            continue
                        if code != 0x85:
                            pass
                        else:  # TUPLE1
                            if len(stack) - 1 < fence:
                                i -= 1
                                break
                            v = stack[-1] = (stack[-1],)
                            p += 1
                            try:
                                if bl[p] != 0x94:
                                    continue
                            except IndexError:
                                continue  # (the next opcode is in the next chunk)
                            if dense and len(tail) < cap and (mk := tuple_codes.get(1)) is not None:
                                tail.append(mk)
                            elif not tail and len(full) < exact:
                                full[len(full)] = v
                            elif len(full) + len(tail) < max_memo:
                                memo.put(len(full) + len(tail), v, last_str + base if last_end == p else None)
                                dense = memo.dense_next()
                                cap = max_memo - memo.tail_base
                            else:
                                continue  # (the MEMOIZE runs on its own: `_step` raises the budget)
                            p += 1
                            extra += 1
                            continue
                        if code == 0x29:  # EMPTY_TUPLE
                            push(())
                            p += 1
                            continue
                        if code != 0x73:
                            pass
                        else:  # SETITEM into a dict or an allowed class's object
                            target = stack[-3]
                            if len(stack) - 3 >= fence:
                                if type(target) is PDict:
                                    if len(target.flat) < keep2:
                                        target.flat += stack[-2:]
                                        target.size += 1
                                        del stack[-2:]
                                        p += 1
                                        continue
                                elif type(target) is Call and type(target.func) is Global and target.func.plain \
                                        and not constrained:
                                    del stack[-2:]
                                    p += 1
                                    continue
                        if code == 0x4d:  # BININT2
                            push(bl[p + 1] | bl[p + 2] << 8)
                            p += 3
                            continue
                        if code == 0x89:  # NEWFALSE
                            push(False)
                            p += 1
                            continue
                        if code == 0x4b:  # BININT1
                            push(bl[p + 1])
                            p += 2
                            continue
                        if code == 0x4e:  # NONE
                            push(None)
                            p += 1
                            continue
                        # protocols 0-3 (torch.save's default is 2): memo puts and gets with an index, and
                        # str arguments with a 4-byte length (the exact memo region here, the rest below)
                        if code == 0x71:  # BINPUT
                            idx = bl[p + 1]
                            if len(stack) > fence and (idx in full or not tail and len(full) < exact):
                                full[idx] = stack[-1]
                                p += 2
                                continue
                        if code == 0x72:  # LONG_BINPUT
                            idx = u32(cb, p + 1)[0]
                            if len(stack) > fence and (idx in full or not tail and len(full) < exact):
                                full[idx] = stack[-1]
                                p += 5
                                continue
                        if code == 0x58:  # BINUNICODE, up to SPAN_CAP bytes (longer: a span, by the table)
                            end = p + 5 + u32(cb, p + 1)[0]
                            if end <= p + 5 + SPAN_CAP:
                                if end > cn:
                                    raise IndexError
                                try:
                                    push(cb[p + 5:end].decode("utf-8", "surrogatepass"))
                                    last_str = p
                                    p = last_end = end
                                    continue
                                except UnicodeDecodeError:
                                    pass  # (the table's reader: `_step` raises the loader's error)
                        if code == 0x6a:  # LONG_BINGET
                            v = full.get(u32(cb, p + 1)[0], missing)
                            if v is not missing:
                                push(v)
                                p += 5
                                continue
                        if code != 0x5d:
                            pass
                        else:  # EMPTY_LIST
                            v = new(PList)
                            v.items, v.size = [], 0
                            push(v)
                            p += 1
                            try:
                                if bl[p] != 0x94:
                                    continue
                            except IndexError:
                                continue  # (the next opcode is in the next chunk)
                            if dense and len(tail) < cap:
                                tail.append(-2)
                            elif not tail and len(full) < exact:
                                full[len(full)] = v
                            elif len(full) + len(tail) < max_memo:
                                memo.put(len(full) + len(tail), v, last_str + base if last_end == p else None)
                                dense = memo.dense_next()
                                cap = max_memo - memo.tail_base
                            else:
                                continue  # (the MEMOIZE runs on its own: `_step` raises the budget)
                            p += 1
                            extra += 1
                            continue
                        if code != 0x65:
                            pass
                        else:  # APPENDS to a list or an allowed class's object (IndexError: no MARK / item)
                            k = marks[-1]
                            target = stack[k - 1]
                            if type(target) is PList:
                                if k:
                                    items = target.items
                                    if len(items) < keep:
                                        items.extend(stack[k:k + keep - len(items)])
                                    target.size += len(stack) - k
                                    del stack[k:]
                                    marks.pop()
                                    fence = marks[-1] if marks else 0
                                    p += 1
                                    continue
                            elif type(target) is Call and type(target.func) is Global and target.func.plain and k \
                                    and not constrained:
                                del stack[k:]
                                marks.pop()
                                fence = marks[-1] if marks else 0
                                p += 1
                                continue
                        if code != 0x61:
                            pass
                        else:  # APPEND to a list
                            target = stack[-2]
                            if type(target) is PList and len(stack) - 2 >= fence:
                                item = stack.pop()
                                if len(target.items) < keep:
                                    target.items.append(item)
                                target.size += 1
                                p += 1
                                continue
                        if code != 0x62:
                            pass
                        else:  # BUILD on an object of an allowed class
                            inst = stack[-2]
                            if type(inst) is Call and type(inst.func) is Global and inst.func.plain \
                                    and len(stack) - 2 >= fence and not constrained:
                                inst.state = stack.pop()
                                p += 1
                                continue
                        if code != 0x94:
                            pass
                        else:  # MEMOIZE (one not right after a push that runs it)
                            if len(stack) <= fence or len(full) + len(tail) >= max_memo:
                                i -= 1
                                break
                            memo.put(len(full) + len(tail), stack[-1], last_str + base if last_end == p else None)
                            dense = memo.dense_next()
                            cap = max_memo - memo.tail_base
                            p += 1
                            continue
                        if code != 0x87:
                            pass
                        else:  # TUPLE3
                            if len(stack) - 3 < fence:
                                i -= 1
                                break
                            v = (stack[-3], stack[-2], stack[-1])
                            del stack[-2:]
                            stack[-1] = v
                            p += 1
                            try:
                                if bl[p] != 0x94:
                                    continue
                            except IndexError:
                                continue  # (the next opcode is in the next chunk)
                            if dense and len(tail) < cap and (mk := tuple_codes.get(3)) is not None:
                                tail.append(mk)
                            elif not tail and len(full) < exact:
                                full[len(full)] = v
                            elif len(full) + len(tail) < max_memo:
                                memo.put(len(full) + len(tail), v, last_str + base if last_end == p else None)
                                dense = memo.dense_next()
                                cap = max_memo - memo.tail_base
                            else:
                                continue  # (the MEMOIZE runs on its own: `_step` raises the budget)
                            p += 1
                            extra += 1
                            continue
                        if code != 0x74:
                            pass
                        else:  # TUPLE
                            if not marks:
                                i -= 1
                                break
                            k = marks.pop()
                            v = tuple(stack[k:])
                            del stack[k:]
                            fence = marks[-1] if marks else 0
                            push(v)
                            p += 1
                            try:
                                if bl[p] != 0x94:
                                    continue
                            except IndexError:
                                continue  # (the next opcode is in the next chunk)
                            if dense and len(tail) < cap and v and (mk := tuple_codes.get(len(v))) is not None:
                                tail.append(mk)
                            elif not tail and len(full) < exact:
                                full[len(full)] = v
                            elif len(full) + len(tail) < max_memo:
                                memo.put(len(full) + len(tail), v, last_str + base if last_end == p else None)
                                dense = memo.dense_next()
                                cap = max_memo - memo.tail_base
                            else:
                                continue  # (the MEMOIZE runs on its own: `_step` raises the budget)
                            p += 1
                            extra += 1
                            continue
                        if code != 0x71:
                            pass
                        else:  # BINPUT
                            idx = bl[p + 1]
                            if len(stack) <= fence:
                                i -= 1
                                break
                            if idx in full or (not tail and len(full) < exact):
                                full[idx] = stack[-1]
                            elif len(full) + len(tail) >= max_memo and idx not in memo:
                                i -= 1
                                break
                            else:
                                memo.put(idx, stack[-1], last_str + base if last_end == p else None)
                                dense = memo.dense_next()
                                cap = max_memo - memo.tail_base
                            p += 2
                            continue
                        if code != 0x72:
                            pass
                        else:  # LONG_BINPUT
                            idx = u32(cb, p + 1)[0]
                            if len(stack) <= fence:
                                i -= 1
                                break
                            if idx in full or (not tail and len(full) < exact):
                                full[idx] = stack[-1]
                            elif len(full) + len(tail) >= max_memo and idx not in memo:
                                i -= 1
                                break
                            else:
                                memo.put(idx, stack[-1], last_str + base if last_end == p else None)
                                dense = memo.dense_next()
                                cap = max_memo - memo.tail_base
                            p += 5
                            continue
                        if code != 0x6a:
                            pass
                        else:  # LONG_BINGET
                            idx = u32(cb, p + 1)[0]
                            v = full.get(idx, missing)
                            if v is missing:
                                v = memo.get(idx)
                                if v is missing:
                                    i -= 1
                                    break
                            push(v)
                            p += 5
                            continue
                        if code != 0x81:
                            pass
                        else:  # NEWOBJ of an allowed class with an argument tuple
                            f = stack[-2]
                            if type(f) is not Global or not f.plain or type(stack[-1]) is not tuple \
                                    or len(stack) - 2 < fence or constrained:
                                pass  # (the opcode table)
                            else:
                                v = new(Call)
                                v.func, v.args, v.kwargs, v.offset, v.opcode = f, stack.pop(), None, base + p, "NEWOBJ"
                                v.state = None
                                stack[-1] = v
                                calls.append(f.full)
                                p += 1
                                try:
                                    if bl[p] != 0x94:
                                        continue
                                except IndexError:
                                    continue  # (the next opcode is in the next chunk)
                                if dense and len(tail) < cap and (mk := call_codes.get(id(f))) is not None:
                                    tail.append(mk)
                                elif not tail and len(full) < exact:
                                    full[len(full)] = v
                                elif len(full) + len(tail) < max_memo:
                                    memo.put(len(full) + len(tail), v, last_str + base if last_end == p else None)
                                    dense = memo.dense_next()
                                    cap = max_memo - memo.tail_base
                                else:
                                    continue  # (the MEMOIZE runs on its own: `_step` raises the budget)
                                p += 1
                                extra += 1
                                continue
                        if code != 0x8f:
                            pass
                        else:  # EMPTY_SET
                            v = new(PSet)
                            v.items, v.size, v.frozen = [], 0, False
                            push(v)
                            p += 1
                            try:
                                if bl[p] != 0x94:
                                    continue
                            except IndexError:
                                continue  # (the next opcode is in the next chunk)
                            if not tail and len(full) < exact:
                                full[len(full)] = v
                            elif len(full) + len(tail) < max_memo:
                                memo.put(len(full) + len(tail), v, last_str + base if last_end == p else None)
                                dense = memo.dense_next()
                                cap = max_memo - memo.tail_base
                            else:
                                continue  # (the MEMOIZE runs on its own: `_step` raises the budget)
                            p += 1
                            extra += 1
                            continue
                        # everything else: the opcode table, as `_step` runs it
                        op_start = p
                        entry = table[code]
                        if entry is None:  # not an opcode, or a text argument: `_step`
                            i -= 1
                            break
                        reader, handler = entry
                        arg = None
                        if reader is not None:
                            got = reader(cb, p + 1, base, base + p)
                            if got is None:  # past the chunk's end (maybe far: a long string), or invalid
                                i -= 1
                                break
                            arg, p = got
                        else:
                            p += 1
                        m.op_offset, m.position, r.pos = base + op_start, ops + i + extra, base + p
                        out.opcodes = ops + i + 1 + extra
                        m.last_code = code
                        frames, window = (m.frame_end, m.c_frame_end), r.buf
                        synced = True
                        if handler(arg):
                            return True
                        synced = False
                        if code in STR_CODES:
                            last_str, last_end = op_start, p
                        fence = marks[-1] if marks else 0
                        constrained = m.constrained
                        dense = memo.dense_next()
                        cap = max_memo - memo.tail_base
                        if r.pos != base + p or r.buf is not window or (m.frame_end, m.c_frame_end) != frames:
                            moved = True  # a handler moved the reader, opened or left a frame: a new chunk
                            break
                    else:
                        if block > 0:
                            ops += block
                            continue
                        break  # a budget check point: `_step`
                    ops += i + 1  # (a branch giving up on its opcode sets `i -= 1` first)
                    break
            except (IndexError, StructError):  # an argument past the chunk's end
                if synced:
                    raise  # (from a handler: not ours to hide)
                ops += i  # (opcode i is not run)
                ended = True
            if moved:
                moved = False
                p = r.pos - base
            elif not ended or p == 0 or base + cn >= bound:
                break  # a real boundary, or an opcode `_step` must run (this chunk started with it)
            else:
                m.fast_chunk = None  # the rest of the opcode is past this chunk: one starting with it
            r.pos = base + p
            got = _chunk(m)
            if got is None:
                break
            cb, bl, nbase, bound = got
            last_str += base - nbase
            last_end += base - nbase
            p += base - nbase
            base = nbase
        m.position = ops + extra
        return False
    finally:
        if len(calls) > MAX_NAMES:
            del calls[MAX_NAMES:]
        if not synced:  # (else r.pos and out.opcodes were set for the handler)
            r.pos = base + p
            out.opcodes = ops + extra
        m.last_str, m.last_str_end = last_str + base, last_end + base
