//! Pass 1 of the lexicon scan with AVX-512: sixteen ASCII chars per step.
//!
//! The 128 ASCII entries sit in eight registers and are looked up with four two-register
//! permutes; the start bits come from mask arithmetic on the wordy flags, and the kept
//! entries (separators dropped) are compressed into place with their offsets. A chunk is
//! taken up to its first non-ASCII byte, so mixed text gains on its Latin runs too. The
//! scalar pass stays the reference: the tests compare both with the DFA.

use std::arch::x86_64::{
    __m512i, _mm512_add_epi64, _mm512_cvtepu8_epi32, _mm512_loadu_si512, _mm512_mask_blend_epi32,
    _mm512_mask_or_epi32, _mm512_maskz_compress_epi32, _mm512_maskz_compress_epi64,
    _mm512_permutex2var_epi32, _mm512_set1_epi32, _mm512_set1_epi64, _mm512_setr_epi64,
    _mm512_setzero_si512, _mm512_storeu_si512, _mm512_test_epi32_mask, _mm_loadu_si128,
    _mm_movemask_epi8,
};

use super::{put_entry, CharMatcher, EDGE_START, FREE_START, GENERIC, ORIG_WORDY, SKIP, START};

/// Whether this CPU runs [`table_chars`]: checked once per matcher, so a wheel built on one
/// machine runs on another.
pub(super) fn available() -> bool {
    is_x86_feature_detected!("avx512f")
}

/// [`CharMatcher::table_chars`] with the ASCII runs sixteen at a time. Only for matchers
/// whose ASCII entries are not `GENERIC`.
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
    let flag = |f: u32| _mm512_set1_epi32(f as i32);
    let lanes_lo = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
    let lanes_hi = _mm512_setr_epi64(8, 9, 10, 11, 12, 13, 14, 15);
    let limit = ents.len().min(offs.len());
    let mut prev = u32::from(prev_wordy);
    while i < bytes.len() && k < limit {
        if i + 16 <= bytes.len() && k + 16 <= limit {
            // SAFETY: i + 16 <= bytes.len(), an unaligned 16-byte load.
            let chunk = unsafe { _mm_loadu_si128(bytes.as_ptr().add(i).cast()) };
            // The ASCII chars before the first non-ASCII byte.
            let n = (_mm_movemask_epi8(chunk) as u32 | 1 << 16).trailing_zeros();
            if n > 0 {
                let idx = _mm512_cvtepu8_epi32(chunk);
                let quarter =
                    |q: usize| _mm512_permutex2var_epi32(ascii[2 * q], idx, ascii[2 * q + 1]);
                let bit5 = _mm512_test_epi32_mask(idx, flag(32));
                let bit6 = _mm512_test_epi32_mask(idx, flag(64));
                let e = _mm512_mask_blend_epi32(
                    bit6,
                    _mm512_mask_blend_epi32(bit5, quarter(0), quarter(1)),
                    _mm512_mask_blend_epi32(bit5, quarter(2), quarter(3)),
                );
                let has = |f: u32| _mm512_test_epi32_mask(e, flag(f));
                let wordy = has(ORIG_WORDY);
                let after_wordy = (wordy << 1) | prev as u16;
                let start = has(FREE_START) | (has(EDGE_START) & !after_wordy);
                let e = _mm512_mask_or_epi32(e, start, e, flag(START));
                let keep = !has(SKIP) & ((1u32 << n) - 1) as u16;
                let (keep_lo, keep_hi) = (keep as u8, (keep >> 8) as u8);
                let at = _mm512_set1_epi64(i as i64);
                let mid = k + keep_lo.count_ones() as usize;
                // SAFETY: k + 16 <= limit, the length of both slices: the entry store
                // writes ents[k..k + 16], the offset stores offs[k..k + 8] and
                // offs[mid..mid + 8] with mid <= k + 8.
                unsafe {
                    let ents_at = ents.as_mut_ptr().add(k).cast::<__m512i>();
                    _mm512_storeu_si512(ents_at, _mm512_maskz_compress_epi32(keep, e));
                    let offs_at = offs.as_mut_ptr().add(k).cast::<__m512i>();
                    let lo = _mm512_add_epi64(at, lanes_lo);
                    _mm512_storeu_si512(offs_at, _mm512_maskz_compress_epi64(keep_lo, lo));
                    let offs_mid = offs.as_mut_ptr().add(mid).cast::<__m512i>();
                    let hi = _mm512_add_epi64(at, lanes_hi);
                    _mm512_storeu_si512(offs_mid, _mm512_maskz_compress_epi64(keep_hi, hi));
                }
                k += keep.count_ones() as usize;
                prev = u32::from(wordy >> (n - 1)) & 1;
                i += n as usize;
                continue;
            }
        }
        let (e, len) = m.lookup(bytes, i);
        if e & GENERIC != 0 {
            break;
        }
        (k, prev) = put_entry(e, i, k, prev, ents, offs);
        i += len;
    }
    (i, k, prev != 0)
}
