//! Rebuilds when a migration is added: `embed_migrations!` reads the folders at compile
//! time, and cargo does not watch them otherwise.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
