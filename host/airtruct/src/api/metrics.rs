//! `GET /metrics`: Prometheus text, per stream (summed over its workers) and per worker.

use std::fmt::Write as _;

use airtruct_store::WorkerState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;

/// Prometheus text: per stream (summed over its workers) and per worker.
pub async fn serve(State(state): State<AppState>) -> impl IntoResponse {
    let streams = state.store.list_streams().await.unwrap_or_default();
    let workers = state.store.list_workers().await.unwrap_or_default();
    let reports = state.reports();
    let mut out = String::new();
    let snapshots: Vec<_> = streams
        .iter()
        .map(|s| (s, state.stream_metrics(&s.id)))
        .collect();
    let names = airtruct_runtime::MetricsSnapshot::default().counters();
    for (i, (name, help, _)) in names.iter().enumerate() {
        let _ = writeln!(out, "# HELP airtruct_stream_{name}_total {help}");
        let _ = writeln!(out, "# TYPE airtruct_stream_{name}_total counter");
        for (s, m) in &snapshots {
            let value = m.counters()[i].2;
            let _ = writeln!(
                out,
                "airtruct_stream_{name}_total{{stream=\"{}\",name=\"{}\"}} {value}",
                s.id,
                escape(&s.name)
            );
        }
    }
    let gauges = airtruct_runtime::MetricsSnapshot::default().gauges();
    for (i, (name, help, _)) in gauges.iter().enumerate() {
        let _ = writeln!(out, "# HELP airtruct_stream_{name} {help}");
        let _ = writeln!(out, "# TYPE airtruct_stream_{name} gauge");
        for (s, m) in &snapshots {
            let value = m.gauges()[i].2;
            let _ = writeln!(
                out,
                "airtruct_stream_{name}{{stream=\"{}\",name=\"{}\"}} {value}",
                s.id,
                escape(&s.name)
            );
        }
    }
    let component_names = airtruct_runtime::ComponentSnapshot::default().counters();
    for (i, (name, help, _)) in component_names.iter().enumerate() {
        let _ = writeln!(out, "# HELP airtruct_component_{name}_total {help}");
        let _ = writeln!(out, "# TYPE airtruct_component_{name}_total counter");
        for (s, m) in &snapshots {
            for c in &m.components {
                let _ = writeln!(
                    out,
                    "airtruct_component_{name}_total{{stream=\"{}\",component=\"{}\",kind=\"{}\"}} {}",
                    s.id,
                    escape(&c.component),
                    escape(&c.kind),
                    c.counters()[i].2
                );
            }
        }
    }
    out.push_str("# HELP airtruct_stream_latency_seconds Batch latency, from batch formed to output confirmed\n");
    out.push_str("# TYPE airtruct_stream_latency_seconds summary\n");
    for (s, m) in &snapshots {
        let labels = format!("stream=\"{}\",name=\"{}\"", s.id, escape(&s.name));
        let _ = writeln!(
            out,
            "airtruct_stream_latency_seconds_sum{{{labels}}} {}",
            m.latency_us_sum as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "airtruct_stream_latency_seconds_count{{{labels}}} {}",
            m.batches
        );
    }
    out.push_str("# HELP airtruct_stream_up Whether the stream is active (1) or not (0)\n");
    out.push_str("# TYPE airtruct_stream_up gauge\n");
    for s in &streams {
        let up = u8::from(s.status == airtruct_store::StreamStatus::Active);
        let _ = writeln!(
            out,
            "airtruct_stream_up{{stream=\"{}\",name=\"{}\"}} {up}",
            s.id,
            escape(&s.name)
        );
    }
    out.push_str("# HELP airtruct_worker_streams_running Streams a worker runs\n");
    out.push_str("# TYPE airtruct_worker_streams_running gauge\n");
    for w in workers.iter().filter(|w| w.state != WorkerState::Dead) {
        let running = reports.get(&w.id).map_or(0, |r| {
            r.streams
                .iter()
                .filter(|s| s.state == crate::protocol::ReplicaState::Running)
                .count()
        });
        let _ = writeln!(
            out,
            "airtruct_worker_streams_running{{worker=\"{}\",name=\"{}\"}} {running}",
            w.id,
            escape(&w.name)
        );
    }
    let alive = workers
        .iter()
        .filter(|w| w.state == WorkerState::Alive)
        .count();
    out.push_str("# HELP airtruct_workers_alive Workers taking streams\n");
    out.push_str("# TYPE airtruct_workers_alive gauge\n");
    let _ = writeln!(out, "airtruct_workers_alive {alive}");
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
