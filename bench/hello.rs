//! The floor: the least a credential helper can do. Read stdin, print one line, exit.
//! Built by scripts/bench.sh the way the helper is built (opt-level s, panic abort),
//! statically linked (`-C target-feature=+crt-static`) and also dynamically for reference.
use std::io::{Read, Write};

fn main() {
    let mut input = String::new();
    let _ = std::io::stdin().read_to_string(&mut input);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{{\"ServerURL\":\"{}\",\"Username\":\"u\",\"Secret\":\"s\"}}", input.trim());
}
