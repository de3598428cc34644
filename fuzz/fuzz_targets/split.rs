//! Splitting an input into chunks at points the fuzzer chooses, shared by the targets that
//! feed incremental readers.

/// Takes a split plan from the front of `data`: one byte `n` (0..=15 used) and then `n` chunk
/// lengths of one byte each. Returns the lengths (each at least 1, so feeding always makes
/// progress) and the rest of the input, which is the stream to feed.
pub fn plan(data: &[u8]) -> (Vec<usize>, &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return (Vec::new(), data);
    };
    let n = usize::from(n % 16).min(rest.len());
    let (lens, stream) = rest.split_at(n);
    let lens = lens
        .iter()
        .map(|&b| {
            // Mostly small chunks (where framing bugs live), sometimes large ones.
            if b < 0xf0 {
                usize::from(b) + 1
            } else {
                usize::from(b - 0xef) * 4096
            }
        })
        .collect();
    (lens, stream)
}

/// Cuts `stream` into chunks of the planned lengths, cycling through them; with no lengths,
/// the whole stream is one chunk.
pub fn chunks<'a>(stream: &'a [u8], lens: &'a [usize]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = stream;
    let mut i = 0;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let len = lens
            .get(i % lens.len().max(1))
            .copied()
            .unwrap_or(rest.len());
        i += 1;
        let (chunk, tail) = rest.split_at(len.min(rest.len()));
        rest = tail;
        Some(chunk)
    })
}
