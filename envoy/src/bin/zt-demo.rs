//! `zt-demo OUT_DIR`: prepares `make demo`. It generates a key set, renders `envoy/configs/jwt.yaml`
//! with the demo's fixed ports into `OUT_DIR/envoy.yaml`, the ports into `OUT_DIR/ports.env`, and
//! writes `OUT_DIR/curl.txt`: `curl` lines with a valid, a missing and a tampered token. The private keys live only in this process;
//! the tokens only in that file (under `build/`, which git ignores) and on the terminal.

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::ExitCode;

use zt_envoy_tests::{
    Alg, BedError, KeySet, Ports, TokenLifetime, jwt_plugin_config, render, tamper, template, wasm_dir,
};

const PORTS: Ports = Ports { listener: 10000, admin: 9901, upstream: 10080, idp: 10081 };

fn main() -> ExitCode {
    let Some(out) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: zt-demo OUT_DIR");
        return ExitCode::from(2);
    };
    match prepare(&out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zt-demo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn prepare(out: &std::path::Path) -> Result<(), BedError> {
    // Fail before starting anything if a fixed port is taken (often: a demo still running).
    for port in [PORTS.listener, PORTS.admin, PORTS.upstream] {
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).map_err(|e| BedError::Io {
            what: format!("port 127.0.0.1:{port} is busy (a demo still running? make demo-stop)"),
            source: e,
        })?;
    }
    let keys = KeySet::generate()?;
    let config = render(&template("jwt.yaml")?, PORTS, &wasm_dir(), &jwt_plugin_config(&keys.jwks()))?;
    std::fs::create_dir_all(out).map_err(BedError::io(format!("create {}", out.display())))?;
    let write = |name: &str, text: &str| {
        let path = out.join(name);
        std::fs::write(&path, text).map_err(BedError::io(format!("write {}", path.display())))
    };
    write("envoy.yaml", &config)?;
    // scripts/demo.sh sources this: the ports are chosen in one place only.
    let ports =
        format!("LISTENER_PORT={}\nADMIN_PORT={}\nUPSTREAM_PORT={}\n", PORTS.listener, PORTS.admin, PORTS.upstream);
    write("ports.env", &ports)?;
    // Long enough to paste the lines a while later.
    let token = keys.valid_for(Alg::Rs256, TokenLifetime::from_hours(1))?;
    let url = format!("http://127.0.0.1:{}/hello", PORTS.listener);
    let curl = format!(
        "# valid RS256 token (1 hour): 200, and the echo shows no authorization header\n\
         curl -i -H 'Authorization: Bearer {token}' {url}\n\
         # no token: 401, WWW-Authenticate: Bearer realm=\"zt-demo\"\n\
         curl -i {url}\n\
         # tampered token (payload edited, signature kept): 401, error=\"invalid_token\"\n\
         curl -i -H 'Authorization: Bearer {}' {url}\n",
        tamper(&token)?
    );
    write("curl.txt", &curl)
}
