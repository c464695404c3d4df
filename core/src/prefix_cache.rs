//! Reusing the KV cache of shared prompt prefixes.
//!
//! Two levels. A sequence keeps the KV of what it last evaluated ([`SeqCache`]: a session's
//! previous request and reply, an engine slot's last request), so a prompt that starts the
//! same way (the next chat turn, the same system prompt or few-shot block) evaluates only the
//! rest. [`PrefixCache`] keeps more such prefixes in host memory under a byte budget,
//! least recently used first out, so a prefix whose slot was taken by other work is restored
//! by a copy instead of being computed again.
//!
//! KV computed under one LoRA adapter set is not valid under another, so every cached prefix
//! carries the key of the set it was computed with (see `lora::set_key`).

use llama_cpp_2::context::session::{LlamaStateSeqFlags, SeqState};
use llama_cpp_2::context::LlamaContext;

use crate::model::Token;

/// The key of an adapter set (see `lora::set_key`).
pub(crate) type AdapterKey = Vec<(usize, u32)>;

/// Length of the common prefix of `a` and `b`.
pub(crate) fn common_prefix(a: &[Token], b: &[Token]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// What one sequence of a context holds: exactly the tokens whose KV is in it, in order from
/// position 0, and the adapter set they were evaluated under.
#[derive(Debug, Clone, Default)]
pub(crate) struct SeqCache {
    pub tokens: Vec<Token>,
    pub adapters: AdapterKey,
    /// The sequence holds positions that are not tokens (an image's embeddings): nothing in
    /// it can be reused, and decoded tokens are not recorded, until it is emptied.
    untracked: bool,
}

impl SeqCache {
    /// How many leading tokens of `prompt` this sequence could keep under `adapters`: at most
    /// all but the last, whose logits must be computed.
    pub fn reusable(&self, prompt: &[Token], adapters: &AdapterKey) -> usize {
        if self.untracked || self.adapters != *adapters {
            return 0;
        }
        common_prefix(&self.tokens, prompt).min(prompt.len().saturating_sub(1))
    }

    /// Keep the reusable prefix of `prompt` in sequence `seq` and drop everything after it;
    /// returns the number of positions kept (0 when the cache cannot drop a tail, as with
    /// some sliding-window and recurrent caches: then the sequence is emptied).
    pub fn reuse(
        &mut self,
        ctx: &mut LlamaContext<'_>,
        seq: i32,
        prompt: &[Token],
        adapters: &AdapterKey,
    ) -> usize {
        let keep = self.reusable(prompt, adapters);
        if keep == self.tokens.len() && self.adapters == *adapters && !self.untracked {
            return keep;
        }
        let trimmed = keep > 0
            && ctx
                .clear_kv_cache_seq(Some(seq as u32), Some(keep as u32), None)
                .unwrap_or(false);
        if trimmed {
            self.tokens.truncate(keep);
            keep
        } else {
            self.clear(ctx, seq);
            self.adapters = adapters.clone();
            0
        }
    }

    /// Empty sequence `seq`.
    pub fn clear(&mut self, ctx: &mut LlamaContext<'_>, seq: i32) {
        // Removing a whole sequence always succeeds.
        let _ = ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
        self.tokens.clear();
        self.untracked = false;
    }

    /// Empty sequence `seq` for content that is not tokens (see `untracked`).
    pub fn invalidate(&mut self, ctx: &mut LlamaContext<'_>, seq: i32) {
        self.clear(ctx, seq);
        self.untracked = true;
    }

    /// `tokens` were evaluated at the next positions of the sequence.
    pub fn extend(&mut self, tokens: &[Token]) {
        if !self.untracked {
            self.tokens.extend_from_slice(tokens);
        }
    }
}

struct Entry {
    cache: SeqCache,
    state: SeqState,
    last_used: u64,
}

/// Prefixes kept in host memory under a byte budget (LRU). See the module doc.
pub(crate) struct PrefixCache {
    budget: usize,
    min_tokens: usize,
    entries: Vec<Entry>,
    bytes: usize,
    clock: u64,
}

impl PrefixCache {
    /// A cache of at most `budget` bytes that keeps prefixes of at least `min_tokens` tokens.
    pub fn new(budget: usize, min_tokens: usize) -> PrefixCache {
        PrefixCache {
            budget,
            min_tokens: min_tokens.max(1),
            entries: Vec::new(),
            bytes: 0,
            clock: 0,
        }
    }

    /// Drop every entry.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Prefixes held now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The entry that shares the longest reusable prefix with `prompt`, and that length.
    pub fn best(&self, prompt: &[Token], adapters: &AdapterKey) -> Option<(usize, usize)> {
        self.entries
            .iter()
            .enumerate()
            .map(|(i, e)| (i, e.cache.reusable(prompt, adapters)))
            .filter(|&(_, n)| n > 0)
            .max_by_key(|&(_, n)| n)
    }

    /// Keep a copy of sequence `seq` (holding `cache`), about to be cut to its first `keep`
    /// tokens, unless it would lose fewer than `min_tokens` tokens, is too big for the budget,
    /// or is already held; held prefixes of it are replaced by it.
    ///
    /// The copy is of the whole sequence and delays the request that cuts it (measured: 34 ms
    /// of a 126 ms time to first token, for 1,000 tokens of SmolLM2 KV), so a short tail, such
    /// as the last question and a few answer tokens behind a shared system prompt, is cheaper
    /// to compute again should it ever be asked for.
    pub fn save(&mut self, ctx: &LlamaContext<'_>, seq: i32, cache: &SeqCache, keep: usize) {
        if self.budget == 0 || cache.tokens.len() < keep + self.min_tokens {
            return;
        }
        let covered = self.entries.iter().any(|e| {
            e.cache.adapters == cache.adapters && e.cache.tokens.starts_with(&cache.tokens)
        });
        if covered {
            return;
        }
        let Ok(state) = ctx.state_seq_get(seq, LlamaStateSeqFlags::empty()) else {
            return;
        };
        if state.byte_len() > self.budget {
            return;
        }
        let (bytes, entries) = (&mut self.bytes, &mut self.entries);
        entries.retain(|e| {
            let superseded =
                e.cache.adapters == cache.adapters && cache.tokens.starts_with(&e.cache.tokens);
            if superseded {
                *bytes -= e.state.byte_len();
            }
            !superseded
        });
        while self.bytes + state.byte_len() > self.budget {
            let Some(oldest) = (0..self.entries.len()).min_by_key(|&i| self.entries[i].last_used)
            else {
                break;
            };
            self.bytes -= self.entries.swap_remove(oldest).state.byte_len();
        }
        self.clock += 1;
        self.bytes += state.byte_len();
        self.entries.push(Entry {
            cache: cache.clone(),
            state,
            last_used: self.clock,
        });
    }

    /// Copy entry `index` into sequence `seq`; on success `cache` describes it.
    pub fn restore(
        &mut self,
        index: usize,
        ctx: &mut LlamaContext<'_>,
        seq: i32,
        cache: &mut SeqCache,
    ) -> bool {
        self.clock += 1;
        let entry = &mut self.entries[index];
        entry.last_used = self.clock;
        match ctx.state_seq_set(&entry.state, seq) {
            Ok(()) => {
                *cache = entry.cache.clone();
                true
            }
            Err(_) => {
                cache.clear(ctx, seq);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reusable_prefix_keeps_the_last_prompt_token_and_respects_adapters() {
        let cache = SeqCache {
            tokens: vec![1, 2, 3, 4],
            ..SeqCache::default()
        };
        assert_eq!(cache.reusable(&[1, 2, 9], &vec![]), 2);
        // The whole prompt is cached: its last token is evaluated again for its logits.
        assert_eq!(cache.reusable(&[1, 2, 3], &vec![]), 2);
        assert_eq!(cache.reusable(&[1, 2, 3, 4, 5], &vec![]), 4);
        assert_eq!(cache.reusable(&[1, 2, 3, 4, 5], &vec![(1, 0)]), 0);
        assert_eq!(common_prefix(&[], &[1]), 0);
    }
}
