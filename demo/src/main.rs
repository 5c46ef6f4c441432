//! `stepup-demo`: the local demo (development only); see the README's first command.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    stepup_demo::main(std::env::args_os()).await
}
