//! The `multiarch` binary: parse the command line, run, exit with the code the library chose.

fn main() {
    std::process::exit(multiarch::main_with_args(std::env::args_os()));
}
