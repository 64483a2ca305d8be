"""The VM's fast path: the frequent opcodes run inline, straight from the read window.

`Machine._step` is the reference: every opcode through the opcode table (`read_arg` and an
`op_*` handler). `run` gives exactly the same results for the opcodes it inlines and hands
everything else back: opcodes without an inline form go through the same table (their argument
read from the window by `opcodes.BUFFER_READERS`, their handler called as `_step` would), and
anything unusual (an argument past the window's end, an invalid argument, any error condition,
a window or frame boundary, a budget check point) returns to `_step`, which raises the loader's
error at the loader's position. The property tests run both paths and compare
(tests/pickle/test_pickle_vm_paths.py).

Why one long function: in CPython every call and attribute lookup costs in a loop that runs
tens of millions of times, so the state lives in locals and the opcodes are found by a small
decision tree on the opcode byte (at most six comparisons for the common ones) instead of a
chain. `p` stays on the current opcode until it is done, so giving up on an opcode is `break`.
"""
from __future__ import annotations

from struct import Struct
from struct import error as StructError
from typing import TYPE_CHECKING

from . import values as V
from .memo import MISSING
from .opcodes import STR_CODES
from .values import MAX_NAMES

if TYPE_CHECKING:
    from .machine import Machine

_I32, _U32, _F64 = (Struct(f).unpack_from for f in ("<i", "<I", ">d"))


def run(m: "Machine") -> bool:  # noqa: C901 - see the module docstring
    """Run opcodes from `m`'s read window; True at STOP, False to hand over to `m._step`."""
    r = m.r
    buf = r.buf
    base = r.buf_start
    p = r.pos - base
    n = len(buf)
    # no opcode run here crosses `limit` (a frame's end, the window's end): the last bytes before it
    # go through `_step`, which does the frame bookkeeping and reads past the window
    limit = m._limit(base, n)
    if p < 0 or p >= limit - 9:
        return False
    out = m.out
    stack = m.stack
    push = stack.append
    marks = m.marks
    memo = m.memo
    full = memo.full
    tail = memo.tail
    exact = min(memo.exact, m.max_memo)
    max_memo = m.max_memo
    reread = memo.reread is not None
    tuple_codes, call_codes = memo.tuple_codes, memo.call_codes
    table = m.table
    ops = out.opcodes
    extra = 0  # MEMOIZEs run together with the push before them
    # no opcode grows the stack plus the marks by more than one: up to `stop_at` neither the
    # opcode budget, nor the time check point, nor the depth budget can be reached
    stop_at = min(m.max_opcodes, ops | 0xFFFF, ops + m.max_depth - len(stack) - len(marks))
    safe = limit - 9  # an opcode starting before this ends by `limit` (longest fixed argument: 8 bytes)
    fence = marks[-1] if marks else 0
    last_str, last_end = m.last_str - base, m.last_str_end - base  # the last str/bytes push
    code = op_start = 0
    synced = False  # m.r.pos and the counters are up to date (a handler is running)
    PList, PDict, PSet, Call, Global = V.PList, V.PDict, V.PSet, V.Call, V.Global
    keep, keep2, missing = V.KEEP, 2 * V.KEEP, MISSING
    i32, u32, f64 = _I32, _U32, _F64
    calls = out.calls
    constrained = m.constrained
    generic = missing  # `v` when the opcode is not one the loop runs inline
    try:
        try:
            # at most one MEMOIZE is run with each opcode (extra <= ops - first + 1), so running the
            # loop half the way to `stop_at` keeps ops + extra + 1 <= stop_at at every fused MEMOIZE
            first, last = ops + 1, ops + 1 + (stop_at - ops - 1) // 2
            for ops in range(first, last):  # noqa: B007 - the loop variable is the opcode count
                if p >= safe:
                    ops -= 1
                    break
                code = buf[p]
                if code == 0x68:  # BINGET
                    try:
                        push(full[buf[p + 1]])
                    except KeyError:
                        v = memo.get(buf[p + 1])
                        if v is missing:
                            ops -= 1
                            break
                        push(v)
                    p += 2
                    continue
                v = generic  # pushes of what the pickler memoises set `v` and go on to MEMOIZE below
                if code == 0x94:  # MEMOIZE (one not right after such a push)
                    if len(stack) <= fence or len(full) + len(tail) >= max_memo:
                        ops -= 1
                        break
                    v = stack[-1]
                    extra -= 1  # (the block below runs this MEMOIZE, at p, as if fused)
                elif code < 0x68:
                    if code < 0x4b:
                        if code == 0x28:  # MARK
                            fence = len(stack)
                            marks.append(fence)
                            p += 1
                            continue
                        if code == 0x29:  # EMPTY_TUPLE
                            push(())
                            p += 1
                            continue
                        if code == 0x4a:  # BININT
                            push(i32(buf, p + 1)[0])
                            p += 5
                            continue
                        if code == 0x47:  # BINFLOAT
                            push(f64(buf, p + 1)[0])
                            p += 9
                            continue
                        if code == 0x43:  # SHORT_BINBYTES
                            end = p + 2 + buf[p + 1]
                            if end > limit:
                                ops -= 1
                                break
                            v = buf[p + 2:end]
                            push(v)
                            last_str = p
                            p = last_end = end
                    elif code < 0x5d:
                        if code == 0x4b:  # BININT1
                            push(buf[p + 1])
                            p += 2
                            continue
                        if code == 0x52:  # REDUCE (of an allowed callable with an argument tuple)
                            if len(stack) - 2 >= fence and not constrained and type(stack[-1]) is tuple:
                                f = stack[-2]
                                if type(f) is Global and f.plain:
                                    v = Call(f, stack.pop(), None, base + p, "REDUCE")
                                    stack[-1] = v
                                    calls.append(f.full)
                                    p += 1
                        elif code == 0x4e:  # NONE
                            push(None)
                            p += 1
                            continue
                        elif code == 0x4d:  # BININT2
                            push(buf[p + 1] | buf[p + 2] << 8)
                            p += 3
                            continue
                    else:
                        if code == 0x65:  # APPENDS
                            if marks:
                                k = marks[-1]
                                depth = len(stack)
                                if 0 < k <= depth:
                                    target = stack[k - 1]
                                    if type(target) is PList:
                                        if depth > k:
                                            items = target.items
                                            free = keep - len(items)
                                            if free > 0:
                                                items.extend(stack[k:k + free])
                                            target.size += depth - k
                                            del stack[k:]
                                        marks.pop()
                                        fence = marks[-1] if marks else 0
                                        p += 1
                                        continue
                                    f = target.func if type(target) is Call else None
                                    if type(f) is Global and f.plain and not constrained:
                                        del stack[k:]  # extend() of an allowed class's object
                                        marks.pop()
                                        fence = marks[-1] if marks else 0
                                        p += 1
                                        continue
                        elif code == 0x5d:  # EMPTY_LIST
                            v = PList()
                            push(v)
                            p += 1
                        elif code == 0x62:  # BUILD (on an object of an allowed class)
                            if len(stack) - 2 >= fence and not constrained and type(stack[-2]) is Call:
                                f = stack[-2].func
                                if type(f) is Global and f.plain:
                                    state = stack.pop()
                                    stack[-1].state = state
                                    p += 1
                                    continue
                        elif code == 0x61:  # APPEND
                            if len(stack) - 2 >= fence:
                                target = stack[-2]
                                if type(target) is PList:
                                    item = stack.pop()
                                    if len(target.items) < keep:
                                        target.items.append(item)
                                    target.size += 1
                                    p += 1
                                    continue
                else:  # 0x68 < code, not MEMOIZE
                    if code < 0x80:
                        if code == 0x75:  # SETITEMS
                            if marks:
                                k = marks[-1]
                                depth = len(stack)
                                if 0 < k <= depth and not (depth - k) & 1:
                                    target = stack[k - 1]
                                    if type(target) is PDict:
                                        if depth > k:
                                            if keep2 - len(target.flat) >= depth - k:
                                                target.flat.extend(stack[k:])
                                                target.size += (depth - k) >> 1
                                            else:
                                                target.extend(stack[k:])
                                            del stack[k:]
                                        marks.pop()
                                        fence = marks[-1] if marks else 0
                                        p += 1
                                        continue
                                    f = target.func if type(target) is Call else None
                                    if type(f) is Global and f.plain and not constrained:
                                        del stack[k:]  # __setitem__ of an allowed class's object
                                        marks.pop()
                                        fence = marks[-1] if marks else 0
                                        p += 1
                                        continue
                        elif code == 0x7d:  # EMPTY_DICT
                            v = PDict()
                            push(v)
                            p += 1
                        elif code == 0x71 or code == 0x72:  # BINPUT, LONG_BINPUT
                            idx = buf[p + 1] if code == 0x71 else u32(buf, p + 1)[0]
                            if len(stack) <= fence:
                                ops -= 1
                                break
                            if idx in full or (not tail and len(full) < exact):
                                full[idx] = stack[-1]
                            elif len(full) + len(tail) >= max_memo and idx not in memo:
                                ops -= 1
                                break
                            else:
                                memo.put(idx, stack[-1], last_str + base if last_end == p else None)
                            p += 2 if code == 0x71 else 5
                            continue
                        elif code == 0x73:  # SETITEM
                            if len(stack) - 3 >= fence:
                                target = stack[-3]
                                if type(target) is PDict:
                                    if len(target.flat) < keep2:
                                        target.flat.extend(stack[-2:])
                                        target.size += 1
                                    else:
                                        target.extend(stack[-2:])
                                    del stack[-2:]
                                    p += 1
                                    continue
                                f = target.func if type(target) is Call else None
                                if type(f) is Global and f.plain and not constrained:
                                    del stack[-2:]
                                    p += 1
                                    continue
                        elif code == 0x74:  # TUPLE
                            if not marks:
                                ops -= 1
                                break
                            k = marks.pop()
                            v = tuple(stack[k:])
                            del stack[k:]
                            fence = marks[-1] if marks else 0
                            push(v)
                            p += 1
                        elif code == 0x6a:  # LONG_BINGET
                            idx = u32(buf, p + 1)[0]
                            item = full.get(idx, missing)
                            if item is missing:
                                item = memo.get(idx)
                                if item is missing:
                                    ops -= 1
                                    break
                            push(item)
                            p += 5
                            continue
                    else:
                        if code == 0x8c:  # SHORT_BINUNICODE
                            end = p + 2 + buf[p + 1]
                            if end > limit:
                                ops -= 1
                                break
                            try:
                                v = buf[p + 2:end].decode("utf-8", "surrogatepass")
                            except UnicodeDecodeError:
                                ops -= 1
                                break
                            push(v)
                            last_str = p
                            p = last_end = end
                        elif code == 0x86:  # TUPLE2
                            if len(stack) - 2 < fence:
                                ops -= 1
                                break
                            v = stack[-1] = (stack[-2], stack.pop())
                            p += 1
                        elif code == 0x85:  # TUPLE1
                            if len(stack) - 1 < fence:
                                ops -= 1
                                break
                            v = stack[-1] = (stack[-1],)
                            p += 1
                        elif code == 0x87:  # TUPLE3
                            if len(stack) - 3 < fence:
                                ops -= 1
                                break
                            v = (stack[-3], stack[-2], stack[-1])
                            del stack[-2:]
                            stack[-1] = v
                            p += 1
                        elif code == 0x88:  # NEWTRUE
                            push(True)
                            p += 1
                            continue
                        elif code == 0x89:  # NEWFALSE
                            push(False)
                            p += 1
                            continue
                        elif code == 0x81:  # NEWOBJ (of an allowed class with an argument tuple)
                            if len(stack) - 2 >= fence and not constrained and type(stack[-1]) is tuple:
                                f = stack[-2]
                                if type(f) is Global and f.plain:
                                    v = Call(f, stack.pop(), None, base + p, "NEWOBJ")
                                    stack[-1] = v
                                    calls.append(f.full)
                                    p += 1
                        elif code == 0x8f:  # EMPTY_SET
                            v = PSet()
                            push(v)
                            p += 1
                if v is not generic:
                    # `v` was just pushed: a MEMOIZE right after it runs here (as `code == 0x94` above)
                    if p < safe and buf[p] == 0x94:
                        if not tail and len(full) < exact:
                            full[len(full)] = v
                            p += 1
                            extra += 1
                            continue
                        ntail = len(tail)
                        idx = len(full) + ntail
                        if idx >= max_memo:
                            continue  # (the MEMOIZE branch hands it to `_step`, which raises the budget)
                        else:
                            t = type(v)
                            # the compact code memo.put would store, when it is known here
                            if idx != memo.tail_base + ntail or idx in full:
                                mcode = None
                            elif last_end == p and reread:
                                mcode = last_str + base + 1
                            elif t is PDict:
                                mcode = -1
                            elif t is tuple and v:
                                mcode = tuple_codes.get(len(v))
                            elif t is Call:
                                mcode = call_codes.get(id(v.func))
                            else:
                                mcode = None
                            if mcode is None:
                                memo.put(idx, v, last_str + base if last_end == p else None)
                            else:
                                tail.append(mcode)
                        p += 1
                        extra += 1
                    continue
                # everything else: the opcode table, as `_step` runs it
                op_start = p
                entry = table[code]
                if entry is None:  # not an opcode, or a text argument: `_step`
                    ops -= 1
                    break
                reader, handler = entry
                arg = None
                if reader is not None:
                    got = reader(buf, p + 1, base, base + p)
                    if got is None:
                        ops -= 1
                        break
                    arg, p = got
                    if p > limit:  # crosses a frame boundary or the window's end: `_step`
                        p = op_start
                        ops -= 1
                        break
                else:
                    p += 1
                m.op_offset, m.position, r.pos, out.opcodes = base + op_start, ops + extra - 1, base + p, ops + extra
                m.last_code = code
                synced = True
                if handler(arg):
                    return True
                synced = False
                if code in STR_CODES:
                    last_str, last_end = op_start, p
                if r.buf is not buf:  # a handler read through the reader: same bytes, new window
                    last_str += base - r.buf_start
                    last_end += base - r.buf_start
                    buf, base = r.buf, r.buf_start
                    n = len(buf)
                p = r.pos - base
                fence = marks[-1] if marks else 0
                constrained = m.constrained
                limit = m._limit(base, n)
                safe = limit - 9
                if p < 0:
                    break
        except (IndexError, StructError):  # an argument past the window's end: `_step` reads it
            if synced:
                raise  # (from a handler: not ours to hide)
            ops -= 1
        m.position = ops + extra
        return False
    finally:
        if len(calls) > MAX_NAMES:
            del calls[MAX_NAMES:]
        if not synced:
            r.pos = base + p
        out.opcodes = ops + extra
        m.last_str, m.last_str_end = last_str + base, last_end + base
