//! Channel subscriptions survive reconnects: the client subscribes again on every new
//! connection, once per wanted channel, and only for channels it still wants.

use sentelite_core::{Duration, Frame, Payload};
use sentelite_sim::{LinkConfig, Pair, Records, Side};

use crate::common::*;

/// Channels the server session of `conn` was asked to subscribe to, in order.
fn subscribed_on(p: &Pair, conn: u64) -> Vec<String> {
    p.records()
        .frames(Side::Server(conn))
        .into_iter()
        .filter_map(|(_, f)| match f.frame() {
            Frame::Subscribe(c) => Some(c.channel.to_string()),
            _ => None,
        })
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn both_active(p: &Pair) -> bool {
    p.client.is_open() && p.client.is_subscribed("alpha") && p.client.is_subscribed("beta")
}

#[test]
fn subscriptions_are_sent_again_after_every_reconnect() {
    for seed in SEEDS {
        let mut p = pair(seed, LinkConfig::lossy(ms(10), ms(5), 0.0, seed));
        // Wanted before the first connection exists.
        p.client.subscribe("alpha").unwrap();
        p.client.subscribe("beta").unwrap();
        assert!(p.run_until(both_active, p.now() + Duration::from_secs(5)));
        assert_eq!(sorted(subscribed_on(&p, 1)), ["alpha", "beta"]);

        // Publishing reaches this client back through the server.
        p.client_send(|c, _, buf| c.publish("alpha", Payload::Bytes(b"hi"), false, buf))
            .unwrap();
        p.run_for(ms(100));
        let echoed = p.records().frames(Side::Client).into_iter().any(|(_, f)| {
            matches!(f.frame(), Frame::ChannelMsg(m)
                if m.channel == "alpha" && m.from == "sim-1" && m.payload == Payload::Bytes(b"hi"))
        });
        assert!(echoed, "seed {seed}: channel message not delivered");

        // Transport reset: both subscriptions are re-sent on connection 2, once each.
        p.disconnect_transport();
        assert!(!p.client.is_subscribed("alpha"));
        assert!(p.run_until(both_active, p.now() + Duration::from_secs(5)));
        let conn2 = p.client.connection_id();
        assert_eq!(sorted(subscribed_on(&p, conn2)), ["alpha", "beta"]);

        // Stop wanting beta, then lose the link: only alpha comes back.
        p.client_send(|c, _, buf| c.unsubscribe("beta", buf))
            .unwrap();
        p.run_for(ms(100));
        let unsubscribed = p
            .records()
            .frames(Side::Server(conn2))
            .into_iter()
            .any(|(_, f)| matches!(f.frame(), Frame::Unsubscribe(c) if c.channel == "beta"));
        assert!(unsubscribed);
        p.cut_link();
        p.run_for(Duration::from_secs(4));
        assert!(!p.client.is_open());
        p.restore_link();
        let limit = p.now() + Duration::from_secs(10);
        assert!(p.run_until(|p| p.client.is_subscribed("alpha"), limit));
        let conn3 = p.client.connection_id();
        assert!(conn3 > conn2);
        p.run_for(ms(500));
        assert_eq!(subscribed_on(&p, conn3), ["alpha"]);
        assert!(!p.client.is_subscribed("beta"));
        assert_no_protocol_errors(&p);
    }
}

#[test]
fn subscriptions_survive_a_lossy_link_eventually() {
    // Subscribe frames can be lost; the client only re-sends on a new connection, so on a
    // lossy link the guarantee is: after every handshake each wanted channel is requested
    // exactly once on that connection.
    for seed in SEEDS {
        let mut p = pair(seed, LinkConfig::lossy(ms(10), ms(5), 0.2, seed));
        p.client.subscribe("alpha").unwrap();
        p.client.subscribe("beta").unwrap();
        p.run_for(Duration::from_secs(30));
        for s in p.servers() {
            let opened = s.session.stats().handshakes == 1;
            let subs = subscribed_on(&p, s.id);
            assert!(
                subs.len() <= 2 && (opened || subs.is_empty()),
                "seed {seed}: connection {} got {subs:?}",
                s.id
            );
            let mut dedup = subs.clone();
            dedup.dedup();
            assert_eq!(dedup.len(), subs.len(), "no channel requested twice");
        }
        // And the subscriptions do get through: once the link is clean the client ends up
        // on a connection whose server got both channels, and both are acknowledged.
        p.set_link(LinkConfig::lossy(ms(10), ms(5), 0.0, seed));
        p.disconnect_transport();
        let limit = p.now() + Duration::from_secs(10);
        assert!(
            p.run_until(both_active, limit),
            "seed {seed}: never both subscribed"
        );
        let conn = p.client.connection_id();
        assert_eq!(
            sorted(subscribed_on(&p, conn)),
            ["alpha", "beta"],
            "seed {seed}"
        );
        let fully_subscribed = p
            .servers()
            .iter()
            .filter(|s| sorted(subscribed_on(&p, s.id)) == ["alpha", "beta"])
            .count();
        assert!(fully_subscribed >= 1);
    }
}
