//! A small deterministic generator for the tests that pick kill delays and operations at
//! random (no rand crate in dev-dependencies): the same seed gives the same run.

pub struct Lcg(pub u64);

impl Lcg {
    /// The next number in `0..below` (0 when `below` is 0).
    pub fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below.max(1)
    }
}
