//! Turning token bytes into streamable text.
//!
//! Two rules make streamed pieces safe to show as they arrive:
//! - a UTF-8 character split across tokens is held until it is complete;
//! - text that could be the start of a stop string is held until it is known not to be one,
//!   so a stop string is never partly emitted.

/// Result of feeding one token's bytes.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Fed {
    /// Text that is now safe to emit (may be empty).
    pub emit: String,
    /// A stop string was completed; generation should end. `emit` excludes the stop string.
    pub stopped: bool,
}

/// Assembles token bytes into text while watching for stop strings.
#[derive(Debug)]
pub(crate) struct StreamText {
    stops: Vec<String>,
    /// Bytes of an incomplete UTF-8 character.
    partial: Vec<u8>,
    /// Decoded text that is not yet emitted because it may begin a stop string.
    held: String,
}

impl StreamText {
    pub fn new(stops: &[String]) -> StreamText {
        StreamText {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            partial: Vec::new(),
            held: String::new(),
        }
    }

    /// Feed the bytes of the next token.
    pub fn feed(&mut self, bytes: &[u8]) -> Fed {
        self.partial.extend_from_slice(bytes);
        decode_complete(&mut self.partial, &mut self.held);
        if let Some(at) = self.first_stop() {
            self.held.truncate(at);
            return Fed {
                emit: std::mem::take(&mut self.held),
                stopped: true,
            };
        }
        let keep = self.longest_stop_prefix_suffix();
        let split = self.held.len() - keep;
        let rest = self.held.split_off(split);
        Fed {
            emit: std::mem::replace(&mut self.held, rest),
            stopped: false,
        }
    }

    /// Everything still held, at the end of generation (an unfinished character becomes U+FFFD).
    pub fn finish(&mut self) -> String {
        let mut out = std::mem::take(&mut self.held);
        out.push_str(&String::from_utf8_lossy(&std::mem::take(&mut self.partial)));
        out
    }

    fn first_stop(&self) -> Option<usize> {
        self.stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min()
    }

    /// Length of the longest suffix of `held` that is a proper prefix of some stop string.
    fn longest_stop_prefix_suffix(&self) -> usize {
        let held = self.held.as_str();
        let mut best = 0;
        for stop in &self.stops {
            let max = (stop.len() - 1).min(held.len());
            for len in (best + 1..=max).rev() {
                let start = held.len() - len;
                if held.is_char_boundary(start) && stop.starts_with(&held[start..]) {
                    best = len;
                    break;
                }
            }
        }
        best
    }
}

/// Move every complete character from `bytes` into `out`; keep an incomplete tail.
/// Invalid sequences become U+FFFD so one bad token never stalls the stream.
fn decode_complete(bytes: &mut Vec<u8>, out: &mut String) {
    let mut start = 0;
    loop {
        match std::str::from_utf8(&bytes[start..]) {
            Ok(s) => {
                out.push_str(s);
                bytes.clear();
                return;
            }
            Err(e) => {
                let valid = e.valid_up_to();
                // SAFETY: `from_utf8` just checked that these bytes are valid UTF-8.
                out.push_str(unsafe {
                    std::str::from_utf8_unchecked(&bytes[start..start + valid])
                });
                match e.error_len() {
                    None => {
                        bytes.drain(..start + valid);
                        return;
                    }
                    Some(bad) => {
                        out.push(char::REPLACEMENT_CHARACTER);
                        start += valid + bad;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]], stops: &[&str]) -> (Vec<String>, bool) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut st = StreamText::new(&stops);
        let mut out = Vec::new();
        for c in chunks {
            let fed = st.feed(c);
            out.push(fed.emit);
            if fed.stopped {
                return (out, true);
            }
        }
        out.push(st.finish());
        (out, false)
    }

    #[test]
    fn multibyte_characters_are_never_split() {
        let text = "你好🙂ok";
        let bytes = text.as_bytes();
        for cut in 0..bytes.len() {
            let (pieces, _) = run(&[&bytes[..cut], &bytes[cut..]], &[]);
            assert_eq!(pieces.concat(), text);
        }
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let (pieces, _) = run(&[b"a\xffb"], &[]);
        assert_eq!(pieces.concat(), "a\u{fffd}b");
        let (pieces, _) = run(&[b"a\xe4\xbd"], &[]);
        assert_eq!(pieces.concat(), "a\u{fffd}");
    }

    #[test]
    fn stop_string_is_never_partly_emitted_for_any_split() {
        let text = "Hello <|end|> world";
        let bytes = text.as_bytes();
        for a in 0..bytes.len() {
            for b in a..bytes.len() {
                let (pieces, stopped) =
                    run(&[&bytes[..a], &bytes[a..b], &bytes[b..]], &["<|end|>"]);
                assert!(stopped);
                assert_eq!(pieces.concat(), "Hello ");
                for p in &pieces {
                    assert!(!p.contains('<'), "leaked part of stop string: {p:?}");
                }
            }
        }
    }

    #[test]
    fn near_miss_is_released() {
        let (pieces, stopped) = run(&[b"a<|e", b"x"], &["<|end|>"]);
        assert!(!stopped);
        assert_eq!(
            pieces,
            vec!["a".to_string(), "<|ex".to_string(), String::new()]
        );
    }

    #[test]
    fn earliest_of_several_stops_wins() {
        let (pieces, stopped) = run(&[b"one STOP two END"], &["END", "STOP"]);
        assert!(stopped);
        assert_eq!(pieces.concat(), "one ");
    }
}
