//! Placement: which worker runs which replica of which stream. A pure function of the active streams, the
//! workers and the current assignments, so it is tested without a database or a clock.
//!
//! Rules: a replica stays where it is while its worker is alive (moving a running stream costs a restart); an
//! assignment to a dead or draining worker, or of a stream that is no longer active, is removed; missing replicas
//! go to the alive workers with the fewest assignments, never two replicas of a stream on one worker.

use std::collections::{BTreeMap, BTreeSet};

use airtruct_store::{AssignmentRecord, WorkerRecord, WorkerState};

/// What to change: `(stream_id, worker_id)` pairs.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Placement {
    pub remove: Vec<(String, String)>,
    pub add: Vec<(String, String)>,
}

impl Placement {
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.add.is_empty()
    }
}

/// Computes the changes that bring `assignments` to `active` streams (id, wanted replicas) on alive `workers`.
pub fn plan(
    active: &[(String, usize)],
    workers: &[WorkerRecord],
    assignments: &[AssignmentRecord],
) -> Placement {
    let alive: BTreeSet<&str> = workers
        .iter()
        .filter(|w| w.state == WorkerState::Alive)
        .map(|w| w.id.as_str())
        .collect();
    let wanted: BTreeMap<&str, usize> = active.iter().map(|(s, n)| (s.as_str(), *n)).collect();
    let mut placement = Placement::default();
    let mut load: BTreeMap<&str, usize> = alive.iter().map(|w| (*w, 0)).collect();
    let mut placed: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for a in assignments {
        let keep =
            wanted.contains_key(a.stream_id.as_str()) && alive.contains(a.worker_id.as_str());
        if keep {
            *load.entry(a.worker_id.as_str()).or_default() += 1;
            placed
                .entry(a.stream_id.as_str())
                .or_default()
                .push(a.worker_id.as_str());
        } else {
            placement
                .remove
                .push((a.stream_id.clone(), a.worker_id.clone()));
        }
    }
    for (stream, n) in active {
        let n = (*n).max(1);
        let on = placed.entry(stream.as_str()).or_default();
        // Too many replicas (the stream asked for fewer): drop from the busiest workers.
        while on.len() > n {
            let (i, _) = on
                .iter()
                .enumerate()
                .max_by_key(|(_, w)| (load[**w], std::cmp::Reverse(**w)))
                .expect("not empty");
            let w = on.remove(i);
            *load.get_mut(w).expect("alive") -= 1;
            placement.remove.push((stream.clone(), w.to_string()));
        }
        while on.len() < n {
            let Some(w) = load
                .iter()
                .filter(|(w, _)| !on.contains(w))
                .min_by_key(|(w, l)| (**l, **w))
                .map(|(w, _)| *w)
            else {
                break; // fewer alive workers than replicas: run on as many as there are
            };
            *load.get_mut(w).expect("alive") += 1;
            on.push(w);
            placement.add.push((stream.clone(), w.to_string()));
        }
    }
    placement
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(id: &str, state: WorkerState) -> WorkerRecord {
        WorkerRecord {
            id: id.into(),
            name: id.into(),
            state,
            started_at: 0,
            last_heartbeat: 0,
            ingest_url: None,
        }
    }

    fn assigned(stream: &str, worker: &str) -> AssignmentRecord {
        AssignmentRecord {
            stream_id: stream.into(),
            worker_id: worker.into(),
            assigned_at: 0,
        }
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn active(streams: &[(&str, usize)]) -> Vec<(String, usize)> {
        streams.iter().map(|(s, n)| (s.to_string(), *n)).collect()
    }

    #[test]
    fn spreads_new_streams_over_the_least_loaded_workers() {
        let workers = [
            worker("a", WorkerState::Alive),
            worker("b", WorkerState::Alive),
        ];
        let p = plan(
            &active(&[("s1", 1), ("s2", 1), ("s3", 1)]),
            &workers,
            &[assigned("s0", "a")],
        );
        // s0 is no longer active; after removing it both are empty, then s1, s2, s3 alternate.
        assert_eq!(p.remove, pairs(&[("s0", "a")]));
        assert_eq!(p.add, pairs(&[("s1", "a"), ("s2", "b"), ("s3", "a")]));
    }

    #[test]
    fn moves_streams_off_dead_and_draining_workers_and_keeps_the_rest() {
        let workers = [
            worker("a", WorkerState::Dead),
            worker("b", WorkerState::Alive),
            worker("c", WorkerState::Draining),
            worker("d", WorkerState::Alive),
        ];
        let now = [
            assigned("s1", "a"),
            assigned("s2", "b"),
            assigned("s3", "c"),
        ];
        let p = plan(&active(&[("s1", 1), ("s2", 1), ("s3", 1)]), &workers, &now);
        assert_eq!(p.remove, pairs(&[("s1", "a"), ("s3", "c")]));
        assert_eq!(p.add, pairs(&[("s1", "d"), ("s3", "b")]));
    }

    #[test]
    fn places_replicas_on_distinct_workers_as_far_as_there_are_workers() {
        let workers = [
            worker("a", WorkerState::Alive),
            worker("b", WorkerState::Alive),
        ];
        let p = plan(&active(&[("s", 3)]), &workers, &[assigned("s", "b")]);
        assert_eq!(p.add, pairs(&[("s", "a")]));
        assert!(p.remove.is_empty());
        let p = plan(
            &active(&[("s", 1)]),
            &workers,
            &[assigned("s", "a"), assigned("s", "b")],
        );
        assert_eq!(p.remove.len(), 1);
        assert!(p.add.is_empty());
    }

    #[test]
    fn is_stable_when_nothing_changed() {
        let workers = [
            worker("a", WorkerState::Alive),
            worker("b", WorkerState::Alive),
        ];
        let now = [assigned("s1", "a"), assigned("s2", "a")];
        assert!(plan(&active(&[("s1", 1), ("s2", 1)]), &workers, &now).is_empty());
        assert!(plan(&[], &[], &[]).is_empty());
    }
}
