//! Prints the fleet store's RECORD script exactly as Redis runs it (prelude, bucket helpers,
//! tier constants), for `benches/record-script.sh`.
//!
//!   cargo run --release --example record_lua > record.lua

fn main() {
    print!(
        "{}",
        fleetctl::store::redis::script_source(&fleetctl::fleet::redis::record_lua())
    );
}
