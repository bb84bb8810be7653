fn main() -> std::process::ExitCode {
    vouch::cli::main()
}
