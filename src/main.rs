//! The `mcp-gate` binary: everything it does is in the library's [`mcp_gate::cli`].

fn main() -> std::process::ExitCode {
    mcp_gate::cli::main()
}
