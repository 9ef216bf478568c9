//! Parallel and Map in motion: a fanout starts (a Parallel's branches at once, a Map's
//! iterations as its concurrency allows, depth first), each branch or iteration reports its end,
//! results are kept per slot, failures are tolerated or withdraw the other children, and the
//! fanout's own output is made once all are in.

use serde_json::Value;

use super::event::{Event, StateKind};
use super::execution::{Fanout, Frame, FrameId, Stage};
use super::frames::Step;
use super::retry::Failure;
use super::states::{self, Plan};

impl Step<'_> {
    // ---- Parallel and Map ----

    pub(super) fn begin_fanout(&mut self, id: FrameId, plan: Plan) {
        let started = match &plan.items {
            None => self.emit(id, Event::ParallelStateStarted),
            Some(items) => self.emit(
                id,
                Event::MapStateStarted {
                    length: items.items.len(),
                },
            ),
        };
        // A Distributed Map's iterations are a map run.
        let map_run = self.map_run_arns_for(id, None);
        let fan = Fanout {
            total: plan.total,
            next: 0,
            running: 0,
            limit: plan.limit.max(1),
            failed: 0,
            tolerated_count: plan.tolerated_count,
            tolerated_percentage: plan.tolerated_percentage,
            started_event: started,
            results: vec![None; plan.total as usize],
            items: plan.items.clone(),
            failed_slots: Vec::new(),
            map_run: map_run.as_ref().map(|a| a.id.clone()),
        };
        if let Some(arns) = map_run {
            self.emit(
                id,
                Event::MapRunStarted {
                    map_run_arn: arns.map_run,
                },
            );
        }
        if let Some(items) = &plan.items {
            self.exec.changes.items.push((id, items.clone()));
        }
        self.set_stage(id, Stage::Fanout(fan));
        if plan.total == 0 {
            self.fanout_complete(id);
            return;
        }
        match plan.branch_input {
            // A Parallel starts every branch at once, the first one first.
            Some(input) => {
                let children: Vec<FrameId> = (0..plan.total)
                    .filter_map(|i| self.new_child(id, i, input.clone(), started))
                    .collect();
                if let Some(Stage::Fanout(f)) = self.exec.frames.get_mut(&id).map(|f| &mut f.stage)
                {
                    f.next = plan.total;
                    f.running = children.len() as u32;
                }
                for c in children.into_iter().rev() {
                    self.exec.enqueue_first(c);
                }
            }
            None => self.exec.enqueue_first(id),
        }
    }

    /// A new branch or iteration frame of the fanout in `parent`, at `slot`.
    pub(super) fn new_child(
        &mut self,
        parent: FrameId,
        slot: u32,
        input: Value,
        chain: i64,
    ) -> Option<FrameId> {
        let (machine, vars) = {
            let f = self.exec.frames.get(&parent)?;
            let node = self.machine.node(f.machine, f.state);
            let machine = if node.kind == StateKind::Parallel {
                *node.children.get(slot as usize)?
            } else {
                *node.children.first()?
            };
            (machine, f.vars.clone())
        };
        let start = self.machine.machine(machine).start;
        let child = self.exec.next_frame;
        self.exec.next_frame += 1;
        self.exec.frames.insert(
            child,
            Frame::new(
                Some(super::execution::Parent {
                    frame: parent,
                    slot,
                }),
                machine,
                start,
                input,
                vars,
                chain,
            ),
        );
        self.exec.touch(child);
        Some(child)
    }

    /// Starts the Map's next iteration if its concurrency allows; the iteration runs first,
    /// then the Map is looked at again (depth first: one iteration's frames at a time while
    /// they do not wait).
    pub(super) fn spawn_iterations(&mut self, id: FrameId) {
        let (slot, items, name, started) = {
            let Some(f) = self.exec.frames.get_mut(&id) else {
                return;
            };
            let Stage::Fanout(fan) = &mut f.stage else {
                return;
            };
            if fan.next >= fan.total || fan.running >= fan.limit {
                return;
            }
            let Some(items) = fan.items.clone() else {
                return;
            };
            let slot = fan.next;
            fan.next += 1;
            fan.running += 1;
            let node = self.machine.node(f.machine, f.state);
            (slot, items, node.name.clone(), fan.started_event)
        };
        self.exec.touch(id);
        let input = self
            .view(id)
            .map(|v| states::map::iteration_input(&v, &items, slot));
        match input {
            Some(Ok(input)) => {
                let chain = self.emit_after(
                    started,
                    Event::MapIterationStarted {
                        name,
                        index: slot as usize,
                    },
                );
                if let Some(child) = self.new_child(id, slot, input, chain) {
                    self.exec.enqueue_first(id);
                    self.exec.enqueue_first(child);
                }
            }
            // Its ItemSelector failed: the iteration fails before it starts.
            Some(Err(f)) => self.child_finished(id, u32::MAX, slot, None, Err(f)),
            None => {}
        }
    }

    /// A branch or iteration ended.
    pub(super) fn child_finished(
        &mut self,
        parent: FrameId,
        child: FrameId,
        slot: u32,
        chain: Option<i64>,
        result: Result<Value, Failure>,
    ) {
        let Some(node) = self.node_of(parent) else {
            return;
        };
        let (is_map, name) = (node.kind == StateKind::Map, node.name.clone());
        if let (true, Some(chain)) = (is_map, chain) {
            let (name, index) = (name, slot as usize);
            let event = if result.is_ok() {
                Event::MapIterationSucceeded { name, index }
            } else {
                Event::MapIterationFailed { name, index }
            };
            self.emit_after(chain, event);
        }
        let Some(Stage::Fanout(fan)) = self.exec.frames.get_mut(&parent).map(|f| &mut f.stage)
        else {
            return;
        };
        fan.running = fan.running.saturating_sub(1);
        let value = match result {
            Ok(v) => v,
            Err(f) if !is_map => return self.fanout_failed(parent, f),
            Err(f) => {
                fan.failed += 1;
                let total = fan.total as f64;
                let failed = fan.failed;
                let by_count = fan.tolerated_count.is_some_and(|c| i64::from(failed) <= c);
                let by_pct = fan
                    .tolerated_percentage
                    .is_some_and(|p| total > 0.0 && f64::from(failed) * 100.0 / total <= p);
                if !(by_count || by_pct) {
                    let failure =
                        if fan.tolerated_count.is_some() || fan.tolerated_percentage.is_some() {
                            Failure::new(
                                "States.ExceedToleratedFailureThreshold",
                                "The specified tolerated failure threshold was exceeded",
                            )
                        } else {
                            f
                        };
                    return self.fanout_failed(parent, failure);
                }
                fan.failed_slots.push(slot);
                f.output()
            }
        };
        if let Some(r) = fan.results.get_mut(slot as usize) {
            *r = Some(value.clone());
        }
        let done = fan.running == 0 && fan.next >= fan.total;
        let more = fan.next < fan.total && fan.running < fan.limit;
        let generation = fan.started_event;
        self.exec.touch(parent);
        let key = if child != u32::MAX {
            child
        } else {
            // No frame: the result is kept under a frame number of its own.
            let key = self.exec.next_frame;
            self.exec.next_frame += 1;
            key
        };
        self.exec
            .changes
            .results
            .push((parent, key, slot, value, generation));
        if done {
            self.fanout_complete(parent);
        } else if more {
            self.exec.enqueue(parent);
        }
    }

    /// Every branch or iteration succeeded (or failed within tolerance).
    pub(super) fn fanout_complete(&mut self, id: FrameId) {
        let Some(f) = self.exec.frames.get_mut(&id) else {
            return;
        };
        let Stage::Fanout(fan) = std::mem::replace(&mut f.stage, Stage::Run) else {
            return;
        };
        let is_map = fan.items.is_some();
        self.exec.changes.fanouts_ended.push(id);
        let results: Vec<Value> = fan
            .results
            .iter()
            .map(|r| r.clone().unwrap_or(Value::Null))
            .collect();
        // A ResultWriter writes the results first (the map run and the state succeed after).
        if is_map {
            match self.begin_write(id, &fan, &results) {
                Ok(true) => return,
                Ok(false) => {}
                Err(f) => {
                    self.map_run_ended(id, &fan, Some(&f));
                    self.emit(id, Event::MapStateFailed);
                    return self.state_failed(id, f);
                }
            }
            self.map_run_ended(id, &fan, None);
        }
        self.emit(
            id,
            if is_map {
                Event::MapStateSucceeded
            } else {
                Event::ParallelStateSucceeded
            },
        );
        let work = self
            .view(id)
            .map(|v| states::fanout_finish(&v, Value::Array(results)));
        match work {
            Some(Ok(w)) => self.apply(id, w),
            Some(Err(f)) => self.state_failed(id, f),
            None => {}
        }
    }

    /// A branch failed (or too many iterations): the others are withdrawn.
    pub(super) fn fanout_failed(&mut self, id: FrameId, failure: Failure) {
        if let Some(Stage::Fanout(fan)) = self.exec.frames.get(&id).map(|f| f.stage.clone()) {
            self.map_run_ended(id, &fan, Some(&failure));
        }
        self.abort_children(id);
        let is_map = matches!(self.node_of(id).map(|n| n.kind), Some(StateKind::Map));
        self.exec.changes.fanouts_ended.push(id);
        self.set_stage(id, Stage::Run);
        self.emit(
            id,
            if is_map {
                Event::MapStateFailed
            } else {
                Event::ParallelStateFailed
            },
        );
        self.state_failed(id, failure);
    }

    /// Removes every frame below `parent`, withdrawing what they wait for.
    pub(super) fn abort_children(&mut self, parent: FrameId) {
        let mut below = vec![parent];
        let mut i = 0;
        while i < below.len() {
            let p = below[i];
            below.extend(
                self.exec
                    .frames
                    .iter()
                    .filter(|(_, f)| f.parent.is_some_and(|x| x.frame == p))
                    .map(|(id, _)| *id),
            );
            i += 1;
        }
        for id in below.into_iter().skip(1) {
            if let Some(f) = self.exec.frames.remove(&id) {
                self.exec.changes.frames.remove(&id);
                if matches!(f.stage, Stage::Fanout(_)) {
                    self.exec.changes.fanouts_ended.push(id);
                }
                self.release(&f);
            }
        }
    }
}
