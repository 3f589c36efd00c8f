"""Numba kernels behind the PDQ indexes: popcount, counting sort, MIH probing, brute force.

Hashes are handled as four uint64 words per row (a (n, 32) uint8 array viewed as
(n, 4) uint64): one XOR and one `popcnt` instruction per word. Popcount is the LLVM
`ctpop` intrinsic, so it compiles to the hardware instruction rather than a bit-twiddling
loop. Every kernel is `nogil` so the Python side can split a batch of queries over threads.

Substring `t` (0..15) of a hash is the `t`-th little-endian uint16 of its 32 bytes,
i.e. bytes 2t and 2t+1; which 16 bits form a substring does not matter for the
pigeonhole argument, only that the 16 substrings are disjoint and cover all 256 bits.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core.extending import intrinsic

N_TABLES = 16
N_BUCKETS = 1 << 16


@intrinsic
def popcount64(typingctx, x):
    """Hardware popcount of a uint64 (LLVM ctpop)."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return sig, codegen


@intrinsic
def prefetch_row(typingctx, words, r):
    """Hint the CPU to fetch row r of an (n, 4) uint64 array (LLVM prefetch, read, high locality).

    Measured at 10M hashes: verifying 41k candidates takes 1.05 ms without it and 0.45 ms
    when each iteration prefetches the row 16 candidates ahead (8: 0.60, 32: 0.66).
    """
    sig = types.void(words, r)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        idx = builder.mul(args[1], context.get_constant(types.intp, 4))
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = builder.module.declare_intrinsic("llvm.prefetch", fnty=fnty)
        ptr = builder.bitcast(builder.gep(ary.data, [idx]), i8p)
        builder.call(fn, [ptr, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


PREFETCH_AHEAD = 16


@njit(cache=True, nogil=True, inline="always")
def _dist(words, r, q0, q1, q2, q3):
    return (
        popcount64(words[r, 0] ^ q0)
        + popcount64(words[r, 1] ^ q1)
        + popcount64(words[r, 2] ^ q2)
        + popcount64(words[r, 3] ^ q3)
    )


@njit(cache=True, nogil=True)
def _grow(buf, n):
    out = np.empty(max(2 * buf.shape[0], n), dtype=buf.dtype)
    out[: buf.shape[0]] = buf
    return out


@njit(cache=True, nogil=True)
def _is_dead(dead_bits, r):
    return (dead_bits[r >> 3] >> (r & 7)) & 1


# --------------------------------------------------------------------------- build


@njit(cache=True, nogil=True)
def counting_order(subs16, t):
    """Stable counting sort of rows by substring t: returns (offsets[65537], order[n])."""
    n = subs16.shape[0]
    offsets = np.zeros(N_BUCKETS + 1, dtype=np.uint32)
    for r in range(n):
        offsets[np.int64(subs16[r, t]) + 1] += 1
    for b in range(N_BUCKETS):
        offsets[b + 1] += offsets[b]
    cursor = offsets[:-1].copy()
    order = np.empty(n, dtype=np.uint32)
    for r in range(n):
        b = np.int64(subs16[r, t])
        order[cursor[b]] = r
        cursor[b] += 1
    return offsets, order


@njit(cache=True, nogil=True)
def fill_table(subs16, t, offsets_out, rows_out):
    """Counting sort for one table, written in place (so tables can be built on threads)."""
    offsets, order = counting_order(subs16, t)
    offsets_out[:] = offsets
    rows_out[:] = order


@njit(cache=True, nogil=True)
def gather_rows(src, order, dst):
    """dst[i] = src[order[i]] for 2-D src (a permutation copy without a numpy temporary)."""
    for i in range(order.shape[0]):
        dst[i, :] = src[order[i], :]


# --------------------------------------------------------------------------- search


@njit(cache=True, nogil=True, inline="always")
def _scan_rows(words, rows_t, start, end, q0, q1, q2, q3, thr, out_r, out_d, cnt):
    """Verify the rows listed in rows_t[start:end]; out_* must have room for end - start more."""
    pf_end = end - PREFETCH_AHEAD
    for k in range(start, end):
        if k < pf_end:
            prefetch_row(words, np.int64(rows_t[k + PREFETCH_AHEAD]))
        r = rows_t[k]
        d = _dist(words, r, q0, q1, q2, q3)
        if d <= thr:
            out_r[cnt] = r
            out_d[cnt] = d
            cnt += 1
    return cnt


@njit(cache=True, nogil=True, inline="always")
def _scan_range(words, start, end, q0, q1, q2, q3, thr, out_r, out_d, cnt):
    """Verify rows start..end-1 (table 0, whose buckets are row ranges)."""
    for r in range(start, end):
        d = _dist(words, r, q0, q1, q2, q3)
        if d <= thr:
            out_r[cnt] = r
            out_d[cnt] = d
            cnt += 1
    return cnt


@njit(cache=True, nogil=True)
def _scan_bucket(words, rows_t, use_rows, start, end, q0, q1, q2, q3, thr, out_r, out_d, cnt):
    start = np.int64(start)
    end = np.int64(end)
    if cnt + end - start > out_r.shape[0]:
        out_r = _grow(out_r, cnt + end - start)
        out_d = _grow(out_d, cnt + end - start)
    if use_rows:
        cnt = _scan_rows(words, rows_t, start, end, q0, q1, q2, q3, thr, out_r, out_d, cnt)
    else:
        cnt = _scan_range(words, start, end, q0, q1, q2, q3, thr, out_r, out_d, cnt)
    return out_r, out_d, cnt


@njit(cache=True, nogil=True, inline="always")
def _collect(cand, nc, rows_t, use_rows, start, end):
    start = np.int64(start)
    end = np.int64(end)
    if use_rows:
        for k in range(start, end):
            cand[nc] = rows_t[k]
            nc += 1
    else:
        for r in range(start, end):
            cand[nc] = r
            nc += 1
    return nc


@njit(cache=True, nogil=True)
def _bucket_total(offsets, q_subs, radius):
    total = 0
    for t in range(N_TABLES):
        base = np.int64(q_subs[t])
        off = offsets[t]
        total += np.int64(off[base + 1]) - np.int64(off[base])
        if radius >= 1:
            for i in range(16):
                b1 = base ^ (1 << i)
                total += np.int64(off[b1 + 1]) - np.int64(off[b1])
                if radius >= 2:
                    for j in range(i + 1, 16):
                        b2 = b1 ^ (1 << j)
                        total += np.int64(off[b2 + 1]) - np.int64(off[b2])
    return total


@njit(cache=True, nogil=True)
def mih_query(words, offsets, rows, dead_bits, q_words, q_subs, radius, threshold, out_r, out_d, cand):
    """Probe the 16 tables of one query at Hamming radius `radius` (0, 1 or 2) per substring.

    Table 0 has no row array: main rows are stored sorted by substring 0, so bucket b
    of table 0 *is* the row range offsets[0, b]..offsets[0, b+1]. Candidates' row
    numbers are first copied out of the buckets (short sequential reads) into `cand`,
    then verified in one tight loop that prefetches the row 16 candidates ahead, so
    many cache misses overlap (0.56 ms per query at 10M, vs 1.1 ms bucket by bucket).
    Only the few survivors are deduplicated and checked against tombstones.
    Returns (rows, dists, count, cand), rows unique and live, unordered.
    """
    total = _bucket_total(offsets, q_subs, radius)
    if total > cand.shape[0]:
        cand = np.empty(max(total, 2 * cand.shape[0]), dtype=np.uint32)
    nc = 0
    for t in range(N_TABLES):
        rows_t = rows[t - 1] if t > 0 else rows[0]
        use_rows = t > 0
        base = np.int64(q_subs[t])
        off = offsets[t]
        nc = _collect(cand, nc, rows_t, use_rows, off[base], off[base + 1])
        if radius >= 1:
            for i in range(16):
                b1 = base ^ (1 << i)
                nc = _collect(cand, nc, rows_t, use_rows, off[b1], off[b1 + 1])
                if radius >= 2:
                    for j in range(i + 1, 16):
                        b2 = b1 ^ (1 << j)
                        nc = _collect(cand, nc, rows_t, use_rows, off[b2], off[b2 + 1])
    q0, q1, q2, q3 = q_words[0], q_words[1], q_words[2], q_words[3]
    thr = np.uint64(threshold)
    if nc > out_r.shape[0]:
        out_r = _grow(out_r, nc)
        out_d = _grow(out_d, nc)
    cnt = _scan_rows(words, cand, 0, nc, q0, q1, q2, q3, thr, out_r, out_d, 0)
    # A near row is found once per table where its substring lies within `radius`:
    # deduplicate the (few) survivors, then drop tombstoned rows.
    if cnt > 1:
        order = np.argsort(out_r[:cnt])
        tr = out_r[:cnt][order]
        td = out_d[:cnt][order]
        m = 0
        for k in range(cnt):
            if k > 0 and tr[k] == tr[k - 1]:
                continue
            out_r[m] = tr[k]
            out_d[m] = td[k]
            m += 1
        cnt = m
    m = 0
    for k in range(cnt):
        if not _is_dead(dead_bits, out_r[k]):
            out_r[m] = out_r[k]
            out_d[m] = out_d[k]
            m += 1
    return out_r, out_d, m, cand


@njit(cache=True, nogil=True)
def brute_query(words, n, dead_bits, q_words, threshold, out_r, out_d):
    """Exhaustive popcount over rows 0..n-1 (the delta segment, or main beyond radius 2).

    Rows go by blocks of 4096 so the inner loop never grows its output (growing inside
    the loop made it 20x slower: numba then refcounts the arrays on every iteration).
    """
    q0, q1, q2, q3 = q_words[0], q_words[1], q_words[2], q_words[3]
    thr = np.uint64(threshold)
    cnt = 0
    for start in range(0, n, 4096):
        end = min(n, start + 4096)
        if cnt + end - start > out_r.shape[0]:
            out_r = _grow(out_r, cnt + end - start)
            out_d = _grow(out_d, cnt + end - start)
        cnt = _scan_range(words, start, end, q0, q1, q2, q3, thr, out_r, out_d, cnt)
    m = 0
    for k in range(cnt):
        if not _is_dead(dead_bits, out_r[k]):
            out_r[m] = out_r[k]
            out_d[m] = out_d[k]
            m += 1
    return out_r, out_d, m


@njit(cache=True, nogil=True)
def mih_batch(
    words, offsets, rows, dead_bits, d_words, d_n, d_dead, q_words, q_subs, radius, threshold, brute_main
):
    """Search queries one after the other over main (MIH or brute force) and delta.

    Returns flat arrays (query index, segment 0=main/1=delta, row, distance).
    """
    m = q_words.shape[0]
    cap = 64
    qi = np.empty(cap, dtype=np.int64)
    seg = np.empty(cap, dtype=np.uint8)
    rr = np.empty(cap, dtype=np.int64)
    dd = np.empty(cap, dtype=np.int64)
    buf_r = np.empty(256, dtype=np.int64)
    buf_d = np.empty(256, dtype=np.int64)
    cand = np.empty(1024, dtype=np.uint32)
    n_main = words.shape[0]
    total = 0
    for i in range(m):
        for s in range(2):
            if s == 0:
                if n_main == 0:
                    continue
                if brute_main:
                    buf_r, buf_d, c = brute_query(words, n_main, dead_bits, q_words[i], threshold, buf_r, buf_d)
                else:
                    buf_r, buf_d, c, cand = mih_query(
                        words, offsets, rows, dead_bits, q_words[i], q_subs[i], radius, threshold, buf_r, buf_d, cand
                    )
            else:
                if d_n == 0:
                    continue
                buf_r, buf_d, c = brute_query(d_words, d_n, d_dead, q_words[i], threshold, buf_r, buf_d)
            if total + c > cap:
                cap = max(2 * cap, total + c)
                qi = _grow(qi, cap)
                seg = _grow(seg, cap)
                rr = _grow(rr, cap)
                dd = _grow(dd, cap)
            for k in range(c):
                qi[total] = i
                seg[total] = s
                rr[total] = buf_r[k]
                dd[total] = buf_d[k]
                total += 1
    return qi[:total], seg[:total], rr[:total], dd[:total]


@njit(cache=True, nogil=True)
def brute_batch(words, q_words, threshold):
    """Exact ground truth for many queries: rows of `words` within threshold of each query.

    Blocks of rows stay in cache while every query passes over them, so the database is
    read from memory once per call rather than once per query. Returns (query, row, dist).
    """
    n = words.shape[0]
    m = q_words.shape[0]
    thr = np.uint64(threshold)
    block = 2048
    cap = 4 * block
    qi = np.empty(cap, dtype=np.int64)
    rr = np.empty(cap, dtype=np.int64)
    dd = np.empty(cap, dtype=np.int64)
    total = 0
    for start in range(0, n, block):
        end = min(n, start + block)
        for i in range(m):
            if total + end - start > cap:
                cap = 2 * cap + end - start
                qi = _grow(qi, cap)
                rr = _grow(rr, cap)
                dd = _grow(dd, cap)
            before = total
            total = _scan_range(words, start, end, q_words[i, 0], q_words[i, 1], q_words[i, 2], q_words[i, 3],
                                thr, rr, dd, total)  # fmt: skip
            for k in range(before, total):
                qi[k] = i
    return qi[:total], rr[:total], dd[:total]
