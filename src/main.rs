//! The `relevance` command line (all logic lives in the library).

fn main() -> std::process::ExitCode {
    relevance::alloc::keep_freed_memory();
    relevance::cli::main()
}
