//! Generated text for benches: a fixed-seed generator and Zipf-distributed prose
//! over a made-up vocabulary, so runs are repeatable and texts are as unlike
//! each other as real articles on different subjects.

/// splitmix64: a fixed-seed generator, so every run generates the same data.
pub struct Random(pub u64);

impl Random {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut x = self.0;
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Generated prose: words from a 5,000-word vocabulary with Zipf-like
/// frequencies, so common words repeat across articles as in news.
pub struct Prose {
    vocabulary: Vec<String>,
    cumulative: Vec<f64>,
}

impl Prose {
    pub fn new(random: &mut Random) -> Self {
        let vocabulary: Vec<String> = (0..5_000)
            .map(|_| {
                let len = 2 + random.below(9);
                (0..len)
                    .map(|_| (b'a' + random.below(26) as u8) as char)
                    .collect()
            })
            .collect();
        let mut total = 0.0;
        let cumulative = (1..=vocabulary.len())
            .map(|rank| {
                total += 1.0 / rank as f64;
                total
            })
            .collect();
        Self {
            vocabulary,
            cumulative,
        }
    }

    pub fn text(&self, bytes: usize, random: &mut Random) -> String {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let mut text = String::with_capacity(bytes + 16);
        while text.len() < bytes {
            let target = (random.next() >> 11) as f64 / (1u64 << 53) as f64 * total;
            let rank = self.cumulative.partition_point(|&c| c < target);
            text.push_str(&self.vocabulary[rank.min(self.vocabulary.len() - 1)]);
            text.push(if random.chance(0.07) { '.' } else { ' ' });
            text.push(' ');
        }
        text
    }
}
