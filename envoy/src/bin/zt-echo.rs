//! The demo's upstream: `zt-echo PORT` answers every request with the request it received, as JSON.

use std::process::ExitCode;

fn main() -> ExitCode {
    let port = std::env::args().nth(1).and_then(|p| p.parse::<u16>().ok());
    let Some(port) = port else {
        eprintln!("usage: zt-echo PORT");
        return ExitCode::from(2);
    };
    match zt_envoy_tests::EchoUpstream::bind(port) {
        Ok(echo) => {
            println!("zt-echo: listening on 127.0.0.1:{}", echo.port());
            echo.serve_forever();
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("zt-echo: {e}");
            ExitCode::FAILURE
        }
    }
}
