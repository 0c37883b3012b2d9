//! embassy-net over the radio: DHCPv4, one stack for the whole application.

use embassy_executor::Spawner;
use embassy_net::{Config, Stack, StackResources};
use embassy_rp::clocks::RoscRng;
use static_cell::StaticCell;

/// Sockets the stack can hold at once: the sentelite connection, one blob download, DNS,
/// and DHCP.
const SOCKETS: usize = 4;

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, cyw43::NetDriver<'static>>) -> ! {
    runner.run().await
}

/// Start the stack on the radio's network device with DHCP and spawn its task.
pub fn start(spawner: Spawner, device: cyw43::NetDriver<'static>) -> Stack<'static> {
    static RESOURCES: StaticCell<StackResources<SOCKETS>> = StaticCell::new();
    let seed = RoscRng.next_u64();
    let (stack, runner) = embassy_net::new(
        device,
        Config::dhcpv4(Default::default()),
        RESOURCES.init(StackResources::new()),
        seed,
    );
    spawner.spawn(defmt::unwrap!(net_task(runner)));
    stack
}
