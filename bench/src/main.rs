//! The `ringcast-bench` command; everything lives in the library.

fn main() -> std::process::ExitCode {
    ringcast_bench::cli::main()
}
