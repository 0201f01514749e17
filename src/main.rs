//! The `regkit` binary: parse the command line, run it, turn the outcome into an exit code.
//! Everything that does work lives in the library; see `regkit::cli`.

fn main() {
    std::process::exit(regkit::cli::main());
}
