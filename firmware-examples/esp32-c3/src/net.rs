//! embassy-net over the radio: DHCPv4, one stack for the whole application.

use embassy_executor::Spawner;
use embassy_net::{Config, Stack, StackResources};
use esp_hal::rng::Rng;
use esp_radio::wifi::Interface;
use static_cell::StaticCell;

/// Sockets the stack can hold at once: the sentelite connection, one blob download, DNS,
/// and DHCP.
const SOCKETS: usize = 4;

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, Interface>) -> ! {
    runner.run().await
}

/// Start the stack on the radio's interface with DHCP and spawn its task.
pub fn start(spawner: Spawner, device: Interface) -> Stack<'static> {
    static RESOURCES: StaticCell<StackResources<SOCKETS>> = StaticCell::new();
    let rng = Rng::new();
    let seed = (u64::from(rng.random()) << 32) | u64::from(rng.random());
    let (stack, runner) = embassy_net::new(
        device,
        Config::dhcpv4(Default::default()),
        RESOURCES.init(StackResources::new()),
        seed,
    );
    spawner.spawn(net_task(runner).expect("one network task"));
    stack
}
