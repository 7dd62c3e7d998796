//! MQTT through a Mosquitto of the bench's own: the stream (mqtt input, the mapping, mqtt output) beside rumqttc's
//! own consume, publish-and-confirm, acknowledge loop.

use std::time::{Duration, Instant};

use airtruct_engine::Engine;
use serde_json::json;

use super::{pipeline, stream_through};

/// Mosquitto on `port`, for this bench: its default limits (20 messages in flight, 1,000 queued per session) drop
/// what a session cannot take at once, so a source filled ahead of its reader would lose messages; and without
/// `set_tcp_nodelay` its PUBACKs wait on the client's delayed ACK, about 40 ms for each batch a stream confirms.
struct Mosquitto {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    async fn start(port: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nset_tcp_nodelay true\nallow_anonymous true\npersistence false\n\
                 max_queued_messages 0\nmax_inflight_messages 0\n"
            ),
        )
        .unwrap();
        let child = std::process::Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("mosquitto (Debian's mosquitto package)");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { child, _dir: dir }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A persistent session (`client_id`) subscribed to `topic` at QoS 1, its event loop polled in a task of its own;
/// answers the client and the publishes and acknowledgements it receives.
async fn mqtt_session(
    port: u16,
    client_id: &str,
    topic: Option<&str>,
) -> (
    rumqttc::AsyncClient,
    tokio::sync::mpsc::UnboundedReceiver<rumqttc::Packet>,
    tokio::task::JoinHandle<()>,
) {
    let mut options = rumqttc::MqttOptions::new(client_id, "127.0.0.1", port);
    options
        .set_keep_alive(Duration::from_secs(10))
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_max_packet_size(16 << 20, 16 << 20);
    let (client, mut events) = rumqttc::AsyncClient::new(options, 1024);
    if let Some(t) = topic {
        client
            .subscribe(t, rumqttc::QoS::AtLeastOnce)
            .await
            .unwrap();
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let poll = tokio::spawn(async move {
        while let Ok(e) = events.poll().await {
            if let rumqttc::Event::Incoming(p) = e
                && tx.send(p).is_err()
            {
                break;
            }
        }
    });
    (client, rx, poll)
}

/// Waits for a session's subscription to be acknowledged.
async fn suback(rx: &mut tokio::sync::mpsc::UnboundedReceiver<rumqttc::Packet>) {
    while let Some(p) = rx.recv().await {
        if matches!(p, rumqttc::Packet::SubAck(_)) {
            return;
        }
    }
}

/// Publishes `n` records to `topic` at QoS 1 and waits for every PUBACK.
async fn mqtt_fill(port: u16, topic: &str, n: u64) {
    let (client, mut rx, poll) = mqtt_session(port, "bench-fill", None).await;
    for i in 0..n {
        client
            .publish(topic, rumqttc::QoS::AtLeastOnce, false, crate::record(i))
            .await
            .unwrap();
    }
    let mut acked = 0;
    while acked < n {
        if let Some(rumqttc::Packet::PubAck(_)) = rx.recv().await {
            acked += 1;
        }
    }
    client.disconnect().await.unwrap();
    let _ = poll.await;
}

/// Consumes each message of the session `client_id`, publishes it to `to` at QoS 1, and acknowledges it once its
/// PUBACK came (acknowledgements go in the order the messages came, as the broker's PUBACKs do).
async fn mqtt_plain(port: u16, client_id: &str, from: &str, to: &str, n: u64) -> Duration {
    let (client, mut rx, poll) = mqtt_session(port, client_id, Some(from)).await;
    let mut pending = std::collections::VecDeque::new();
    let (mut done, mut t) = (0, None);
    while done < n {
        match rx.recv().await.unwrap() {
            rumqttc::Packet::Publish(p) => {
                t.get_or_insert_with(Instant::now);
                client
                    .publish_bytes(to, rumqttc::QoS::AtLeastOnce, false, p.payload.clone())
                    .await
                    .unwrap();
                pending.push_back(p);
            }
            rumqttc::Packet::PubAck(_) => {
                if let Some(p) = pending.pop_front() {
                    client.ack(&p).await.unwrap();
                    done += 1;
                }
            }
            _ => {}
        }
    }
    let d = t.unwrap().elapsed();
    client.disconnect().await.unwrap();
    let _ = poll.await;
    d
}

pub(super) async fn mqtt_bench(engine: &Engine, run: &str, n: u64) -> (Duration, Duration) {
    let port = 18830;
    let _broker = Mosquitto::start(port).await;
    let topics = ["src", "plain", "out"].map(|s| format!("bench/{run}/{s}"));
    // Each reader's session subscribes first, so the broker queues the messages for it.
    for id in ["bench-plain", "bench-stream"] {
        let (client, mut rx, poll) = mqtt_session(port, id, Some(&topics[0])).await;
        suback(&mut rx).await;
        client.disconnect().await.unwrap();
        let _ = poll.await;
    }
    mqtt_fill(port, &topics[0], n).await;
    let plain = mqtt_plain(port, "bench-plain", &topics[0], &topics[1], n).await;
    let url = format!("mqtt://127.0.0.1:{port}");
    let config = json!({
        "input": {"mqtt": {"url": url, "topics": [topics[0]], "qos": 1, "client_id": "bench-stream",
                           "clean_session": false}},
        "pipeline": pipeline(),
        "output": {"mqtt": {"url": url, "topic": topics[2], "qos": 1}},
    });
    let ours = stream_through(engine, config, n).await;
    (plain, ours)
}
