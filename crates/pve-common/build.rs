//! The message catalogs are compiled in by `rust_i18n::i18n!`, which does not tell cargo about them: without
//! this, a change to `locales/*.yml` alone left every binary with the old messages (or raw keys).

fn main() {
    println!("cargo:rerun-if-changed=locales");
}
