//! Pass 1 of the lexicon scan with AVX-512: up to sixteen chars per step.
//!
//! * ASCII (AVX-512F): the 128 ASCII entries sit in eight registers and are looked up with
//!   four two-register permutes.
//! * Three-byte chars, most of Han (AVX-512 VBMI): one byte permute lines each char's bytes
//!   up in a lane, shifts and masks decode it, and a gather reads the entries.
//!
//! Either way the start bits come from mask arithmetic on the wordy flags, and the kept
//! entries (separators dropped) are compressed into place with their offsets. A chunk runs
//! up to the first char of another kind, so mixed text gains on each run. The scalar pass
//! stays the reference: the tests compare both with the DFA.

use std::arch::x86_64::{
    __m128i, __m512i, _mm512_add_epi64, _mm512_and_si512, _mm512_cmpeq_epi8_mask,
    _mm512_cvtepu8_epi32, _mm512_i32gather_epi32, _mm512_loadu_si512, _mm512_mask_blend_epi32,
    _mm512_mask_or_epi32, _mm512_maskz_compress_epi32, _mm512_maskz_compress_epi64,
    _mm512_or_si512, _mm512_permutex2var_epi32, _mm512_permutexvar_epi8, _mm512_set1_epi32,
    _mm512_set1_epi64, _mm512_set1_epi8, _mm512_setr_epi64, _mm512_setzero_si512,
    _mm512_slli_epi32, _mm512_srli_epi32, _mm512_storeu_si512, _mm512_test_epi32_mask,
    _mm_loadu_si128, _mm_movemask_epi8,
};

use super::{CharMatcher, EDGE_START, FREE_START, GENERIC, ORIG_WORDY, SKIP, START};

/// What this CPU runs, checked once per matcher (so a wheel built on one machine runs on
/// another): the ASCII path, and with it the three-byte path.
pub(super) fn available() -> (bool, bool) {
    let f = is_x86_feature_detected!("avx512f");
    let vbmi = is_x86_feature_detected!("avx512bw") && is_x86_feature_detected!("avx512vbmi");
    (f, f && vbmi)
}

/// Bytes 0, 3, …, 45 of a 64-byte chunk: where sixteen three-byte chars start.
const LEADS3: u64 = 0x2492_4924_9249;

/// Byte permutation that puts the bytes of three-byte char j in lane j, lead first.
const LINE_UP3: [u8; 64] = {
    let mut idx = [0u8; 64];
    let mut j = 0;
    while j < 64 {
        idx[j] = (j / 4 * 3 + j % 4 % 3) as u8;
        j += 1;
    }
    idx
};

/// [`CharMatcher::table_chars`] with runs of ASCII (and, with `m.avx512_vbmi`, of
/// three-byte chars) sixteen at a time. Only for matchers whose ASCII entries are not
/// `GENERIC`.
#[target_feature(enable = "avx512f")]
pub(super) fn table_chars(
    m: &CharMatcher,
    bytes: &[u8],
    mut i: usize,
    mut k: usize,
    prev_wordy: bool,
    ents: &mut [u32],
    offs: &mut [usize],
) -> (usize, usize, bool) {
    let mut ascii = [_mm512_setzero_si512(); 8];
    for (r, v) in ascii.iter_mut().enumerate() {
        // SAFETY: the table has 65,536 entries; this reads entries 16r..16r+16 < 128.
        *v = unsafe { _mm512_loadu_si512(m.table[16 * r..].as_ptr().cast::<__m512i>()) };
    }
    let lanes = [
        _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7),
        _mm512_setr_epi64(8, 9, 10, 11, 12, 13, 14, 15),
    ];
    let limit = ents.len().min(offs.len());
    let mut prev = u32::from(prev_wordy);
    while i < bytes.len() && k < limit {
        if i + 16 <= bytes.len() && k + 16 <= limit {
            // SAFETY: i + 16 <= bytes.len(), an unaligned 16-byte load.
            let chunk = unsafe { _mm_loadu_si128(bytes.as_ptr().add(i).cast()) };
            let non_ascii = _mm_movemask_epi8(chunk) as u32;
            // A whole chunk is the common case. A branch for it, not a select: the next
            // load then starts before this one's bytes arrive.
            if non_ascii == 0 {
                let at = offsets(i, lanes);
                (k, prev) = emit(ascii_entries(&ascii, chunk), 16, at, prev, k, ents, offs);
                i += 16;
                continue;
            }
            // The ASCII chars before the first non-ASCII byte.
            let n = non_ascii.trailing_zeros();
            if n > 0 {
                let at = offsets(i, lanes);
                (k, prev) = emit(ascii_entries(&ascii, chunk), n, at, prev, k, ents, offs);
                i += n as usize;
                continue;
            }
            if m.avx512_vbmi && i + 64 <= bytes.len() {
                // SAFETY: `avx512_vbmi` is only set where the CPU has AVX-512BW and VBMI;
                // i + 64 <= bytes.len() and k + 16 <= limit, as the function needs.
                let (n, stop) = unsafe { three_byte_chars(m, bytes, i, k, prev, ents, offs) };
                if n > 0 {
                    (k, prev) = (stop.0, stop.1);
                    i += 3 * n;
                    continue;
                }
            }
        }
        let Some(next) = m.table_char(bytes, i, k, prev, ents, offs) else {
            break;
        };
        (i, k, prev) = next;
    }
    (i, k, prev != 0)
}

/// The entries of sixteen ASCII bytes, from the 128 ASCII entries in eight registers.
#[inline]
#[target_feature(enable = "avx512f")]
fn ascii_entries(ascii: &[__m512i; 8], chunk: __m128i) -> __m512i {
    let idx = _mm512_cvtepu8_epi32(chunk);
    let quarter = |q: usize| _mm512_permutex2var_epi32(ascii[2 * q], idx, ascii[2 * q + 1]);
    let bit5 = _mm512_test_epi32_mask(idx, _mm512_set1_epi32(32));
    let bit6 = _mm512_test_epi32_mask(idx, _mm512_set1_epi32(64));
    _mm512_mask_blend_epi32(
        bit6,
        _mm512_mask_blend_epi32(bit5, quarter(0), quarter(1)),
        _mm512_mask_blend_epi32(bit5, quarter(2), quarter(3)),
    )
}

/// Byte offsets of sixteen chars from `i`: `i` plus each lane's `steps` (two halves).
#[inline]
#[target_feature(enable = "avx512f")]
fn offsets(i: usize, steps: [__m512i; 2]) -> [__m512i; 2] {
    let at = _mm512_set1_epi64(i as i64);
    [
        _mm512_add_epi64(at, steps[0]),
        _mm512_add_epi64(at, steps[1]),
    ]
}

/// The run of three-byte chars at `bytes[i..]`, up to sixteen and up to a `GENERIC` one:
/// how many it took, and the next slot and the last char's wordy bit. Needs
/// `i + 64 <= bytes.len()` and `k + 16 <= limit`.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
fn three_byte_chars(
    m: &CharMatcher,
    bytes: &[u8],
    i: usize,
    k: usize,
    prev: u32,
    ents: &mut [u32],
    offs: &mut [usize],
) -> (usize, (usize, u32)) {
    // SAFETY: the caller checked i + 64 <= bytes.len(): an unaligned 64-byte load.
    let chunk = unsafe { _mm512_loadu_si512(bytes.as_ptr().add(i).cast()) };
    let high = _mm512_and_si512(chunk, _mm512_set1_epi8(0xF0_u8 as i8));
    let lead3 = _mm512_cmpeq_epi8_mask(high, _mm512_set1_epi8(0xE0_u8 as i8));
    // The text is valid UTF-8: a three-byte lead at 3j means char j has three bytes.
    let n = ((!lead3 & LEADS3) | 1 << 48).trailing_zeros() / 3;
    if n == 0 {
        return (0, (k, prev));
    }
    // SAFETY: a 64-byte constant.
    let line_up = unsafe { _mm512_loadu_si512(LINE_UP3.as_ptr().cast()) };
    let x = _mm512_permutexvar_epi8(line_up, chunk);
    let low = |v: __m512i, bits: i32| _mm512_and_si512(v, _mm512_set1_epi32(bits));
    // Code point: lead & 0x0F, then six bits from each continuation byte (at most 0xFFFF).
    let cp = _mm512_or_si512(
        _mm512_or_si512(
            _mm512_slli_epi32::<12>(low(x, 0x0F)),
            _mm512_slli_epi32::<6>(low(_mm512_srli_epi32::<8>(x), 0x3F)),
        ),
        low(_mm512_srli_epi32::<16>(x), 0x3F),
    );
    // SAFETY: every lane's index is at most 0xFFFF, inside the 65,536-entry table.
    let e = unsafe { _mm512_i32gather_epi32::<4>(cp, m.table.as_ptr().cast()) };
    let generic = _mm512_test_epi32_mask(e, _mm512_set1_epi32(GENERIC as i32));
    let mut n = n;
    // A branch, not a select: the next chunk's position then waits on the lead bytes only,
    // not on the gather (GENERIC chars are rare).
    if generic & ((1u32 << n) - 1) as u16 != 0 {
        n = first_generic(generic);
        if n == 0 {
            return (0, (k, prev));
        }
    }
    let steps = [
        _mm512_setr_epi64(0, 3, 6, 9, 12, 15, 18, 21),
        _mm512_setr_epi64(24, 27, 30, 33, 36, 39, 42, 45),
    ];
    (
        n as usize,
        emit(e, n, offsets(i, steps), prev, k, ents, offs),
    )
}

/// The lane of the first `GENERIC` entry (out of line: see [`three_byte_chars`]).
#[cold]
#[inline(never)]
fn first_generic(generic: u16) -> u32 {
    generic.trailing_zeros()
}

/// Stores the first `n` of sixteen entries `e` (of chars at byte offsets `at`, two halves)
/// from `ents[k]` on, with start bits after a char whose wordy bit is `prev`, dropping
/// separators; returns the next slot and the last char's wordy bit. Needs
/// `k + 16 <= ents.len(), offs.len()`.
#[inline]
#[target_feature(enable = "avx512f")]
fn emit(
    e: __m512i,
    n: u32,
    at: [__m512i; 2],
    prev: u32,
    k: usize,
    ents: &mut [u32],
    offs: &mut [usize],
) -> (usize, u32) {
    assert!(k + 16 <= ents.len().min(offs.len()));
    let has = |f: u32| _mm512_test_epi32_mask(e, _mm512_set1_epi32(f as i32));
    let wordy = has(ORIG_WORDY);
    let after_wordy = (wordy << 1) | prev as u16;
    let start = has(FREE_START) | (has(EDGE_START) & !after_wordy);
    let e = _mm512_mask_or_epi32(e, start, e, _mm512_set1_epi32(START as i32));
    let keep = !has(SKIP) & ((1u32 << n) - 1) as u16;
    let (keep_lo, keep_hi) = (keep as u8, (keep >> 8) as u8);
    let mid = k + keep_lo.count_ones() as usize;
    // SAFETY: k + 16 <= the length of both slices (asserted): the entry store writes
    // ents[k..k + 16], the offset stores offs[k..k + 8] and offs[mid..mid + 8] with
    // mid <= k + 8.
    unsafe {
        let ents_at = ents.as_mut_ptr().add(k).cast::<__m512i>();
        _mm512_storeu_si512(ents_at, _mm512_maskz_compress_epi32(keep, e));
        let offs_at = offs.as_mut_ptr().add(k).cast::<__m512i>();
        _mm512_storeu_si512(offs_at, _mm512_maskz_compress_epi64(keep_lo, at[0]));
        let offs_mid = offs.as_mut_ptr().add(mid).cast::<__m512i>();
        _mm512_storeu_si512(offs_mid, _mm512_maskz_compress_epi64(keep_hi, at[1]));
    }
    (
        k + keep.count_ones() as usize,
        u32::from(wordy >> (n - 1)) & 1,
    )
}
