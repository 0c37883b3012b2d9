//! The server under attack, with a bystander connected and the server's memory measured.

use std::time::Duration;

use sentelite_hostile_tests::bystander::Bystander;
use sentelite_hostile_tests::http;
use sentelite_hostile_tests::memory::MemoryBaseline;
use sentelite_integration_tests::ServeProcess;

/// Most the server's resident set may grow during one attack. An idle server uses about
/// 6 MiB; an unbounded queue passes this within a few seconds of flooding (the ping flood of
/// `control_frames` grows an unbounded pong queue by about 30 MiB in its five seconds).
pub const RSS_CEILING_MIB: u64 = 16;

/// A running server, a bystander that has completed one echo, and the memory baseline.
pub struct Target {
    pub server: ServeProcess,
    pub bystander: Bystander,
    pub baseline: MemoryBaseline,
}

impl Target {
    /// Starts the server with `config` (TOML settings) and connects the bystander.
    pub async fn start(config: &str) -> Target {
        Target::around(ServeProcess::start_with_config(config)).await
    }

    /// Connects the bystander to an already started server.
    pub async fn around(server: ServeProcess) -> Target {
        Target::around_as(server, "bystander").await
    }

    /// Connects the bystander (with a client id of choice) to an already started server.
    pub async fn around_as(server: ServeProcess, client_id: &str) -> Target {
        let bystander = Bystander::join(&server.ws_url, client_id).await;
        bystander.assert_echo("before the attack").await;
        let baseline = MemoryBaseline::take(server.pid());
        Target {
            server,
            bystander,
            baseline,
        }
    }

    /// The `127.0.0.1:PORT` address.
    pub fn addr(&self) -> &str {
        &self.server.addr
    }

    /// Asserts the server survived `attack`: `/health` answers, the bystander's echo works
    /// on its original connection, and memory stayed under [`RSS_CEILING_MIB`].
    pub async fn assert_survived(self, attack: &str) {
        assert!(
            http::health_ok(self.addr(), Duration::from_secs(5)).await,
            "{attack}: /health did not answer within 5 s"
        );
        self.bystander
            .assert_echo(&format!("after the attack ({attack})"))
            .await;
        self.baseline.assert_growth_below(RSS_CEILING_MIB, attack);
        self.bystander.leave().await;
    }
}
