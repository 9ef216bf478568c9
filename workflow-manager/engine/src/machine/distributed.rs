//! A Distributed Map's reads and writes in motion. The `ItemReader`'s calls (one `getObject`,
//! or `listObjectsV2` page after page) run before the iterations start; the `ResultWriter`'s
//! `putObject` calls (the result files, then the manifest) run after the last iteration
//! ends, before `MapStateSucceeded`. Each is a service call through the integration registry
//! like a Task's (recorded, re-submitted after a restart, forgotten when the execution
//! stops), without Task events; a failed read fails the state with `States.ItemReaderFailed`,
//! a failed write with `States.ResultWriterFailed`.

use serde_json::{json, Value};

use super::context::iso_ms;
use super::event::Event;
use super::execution::{Fanout, FrameId, MapIo, MapIoStep, Stage};
use super::frames::Step;
use super::retry::Failure;
use super::states::map_io::{self, ChildRecord, Format, MapRunArns, ReadPlan};
use super::states::{self};
use super::{Command, Submission};

/// The resource the result writer writes with.
const PUT_OBJECT: &str = "arn:aws:states:::s3:putObject";

/// A failed read or write, under the Map's error name (the service's cause kept).
fn wrap(error: &str, f: Failure) -> Failure {
    if f.error == error {
        return f;
    }
    Failure::new(error, f.cause)
}

impl Step<'_> {
    /// Starts reading a Distributed Map's items.
    pub(super) fn begin_read(&mut self, id: FrameId, plan: ReadPlan) {
        let step = MapIoStep::Read {
            config: plan.config,
            items: Vec::new(),
        };
        self.map_io_call(id, plan.resource, plan.parameters, step);
    }

    fn map_io_call(&mut self, id: FrameId, resource: String, parameters: Value, step: MapIoStep) {
        let seq = self.exec.seq();
        self.exec.waits.insert(seq, id);
        let key = self.call_key(seq, "");
        self.command(Command::Submit {
            seq,
            resource: resource.clone(),
            parameters: parameters.clone(),
            key,
        });
        self.set_stage(
            id,
            Stage::MapIo(MapIo {
                seq,
                resource,
                parameters,
                step,
            }),
        );
    }

    /// The Map calls that are out (after a restart they are submitted again: reading and
    /// writing the same objects twice does no harm).
    pub(super) fn recover_map_io(&mut self) {
        let out: Vec<MapIo> = self
            .exec
            .frames
            .values()
            .filter_map(|f| match &f.stage {
                Stage::MapIo(io) => Some(io.clone()),
                _ => None,
            })
            .collect();
        for io in out {
            let key = self.call_key(io.seq, "");
            self.command(Command::Submit {
                seq: io.seq,
                resource: io.resource,
                parameters: io.parameters,
                key,
            });
        }
    }

    /// The answer to a Map call, if `seq` is one.
    pub(super) fn map_io_answered(&mut self, seq: u32, result: Result<Submission, Failure>) {
        let Some(&id) = self.exec.waits.get(&seq) else {
            return;
        };
        let io = match self.exec.frames.get(&id).map(|f| &f.stage) {
            Some(Stage::MapIo(io)) if io.seq == seq => io.clone(),
            _ => return,
        };
        self.take_wait(id);
        self.command(Command::EndCall {
            seq,
            resource: io.resource.clone(),
            cancel: None,
        });
        match io.step {
            MapIoStep::Read { config, mut items } => {
                let answer = match result {
                    Ok(sub) => sub.output,
                    Err(f) => return self.state_failed(id, wrap("States.ItemReaderFailed", f)),
                };
                if config.format == Format::Listing {
                    let (page, next) = map_io::parse_listing(&answer);
                    items.extend(page);
                    let full = config.max_items.is_some_and(|m| items.len() as u64 >= m);
                    if let (Some(token), false) = (next, full) {
                        let mut parameters = io.parameters;
                        if let Value::Object(p) = &mut parameters {
                            p.insert("ContinuationToken".into(), json!(token));
                        }
                        let step = MapIoStep::Read { config, items };
                        return self.map_io_call(id, io.resource, parameters, step);
                    }
                    if let Some(m) = config.max_items {
                        items.truncate(m as usize);
                    }
                } else {
                    items = match map_io::parse_object(&config, &answer) {
                        Ok(items) => items,
                        Err(f) => return self.state_failed(id, f),
                    };
                }
                let work = self.view(id).map(|v| states::map::with_items(&v, items));
                match work {
                    Some(Ok(w)) => self.apply(id, w),
                    Some(Err(f)) => self.state_failed(id, f),
                    None => {}
                }
            }
            MapIoStep::Write {
                bucket,
                mut files,
                output,
            } => {
                if let Err(f) = result {
                    let f = wrap("States.ResultWriterFailed", f);
                    self.emit(
                        id,
                        Event::MapRunFailed {
                            error: Some(f.error.clone()),
                            cause: Some(f.cause.clone()),
                        },
                    );
                    self.emit(id, Event::MapStateFailed);
                    return self.state_failed(id, f);
                }
                if files.is_empty() {
                    self.emit(id, Event::MapRunSucceeded);
                    self.emit(id, Event::MapStateSucceeded);
                    let work = self
                        .view(id)
                        .map(|v| states::fanout_finish(&v, output.clone()));
                    match work {
                        Some(Ok(w)) => self.apply(id, w),
                        Some(Err(f)) => self.state_failed(id, f),
                        None => {}
                    }
                    return;
                }
                let (key, body) = files.remove(0);
                let parameters = json!({"Bucket": bucket, "Key": key, "Body": body});
                let step = MapIoStep::Write {
                    bucket,
                    files,
                    output,
                };
                self.map_io_call(id, PUT_OBJECT.to_string(), parameters, step);
            }
        }
    }

    /// After the last iteration of a Map with a `ResultWriter`: starts writing its results
    /// (`Ok(false)`: the Map has no writer).
    pub(super) fn begin_write(
        &mut self,
        id: FrameId,
        fan: &Fanout,
        results: &[Value],
    ) -> Result<bool, Failure> {
        let Some(v) = self.view(id) else {
            return Ok(false);
        };
        let Some(items) = fan.items.clone() else {
            return Err(writer_error("the Map's items are missing"));
        };
        let plan = {
            let part = v.state_part(None);
            let ctx = v.ctx(&part);
            map_io::write_plan(&v, &items.effective, &ctx)?
        };
        let Some(plan) = plan else {
            return Ok(false);
        };
        let Some(arns) = self.map_run_arns_for(id, fan.map_run.as_deref()) else {
            return Err(writer_error("a ResultWriter needs a Distributed Map"));
        };
        let Some(v) = self.view(id) else {
            return Ok(false);
        };
        let failed: std::collections::HashSet<u32> = fan.failed_slots.iter().copied().collect();
        let children = results
            .iter()
            .enumerate()
            .map(|(slot, result)| {
                let slot = slot as u32;
                let failed = failed.contains(&slot);
                // A tolerated failure may be its ItemSelector's: it has no input then.
                let input = match states::map::iteration_input(&v, &items, slot) {
                    Ok(input) => input,
                    Err(_) if failed => Value::Null,
                    Err(f) => return Err(f),
                };
                Ok(ChildRecord {
                    name: arns.child_name(slot),
                    input,
                    result: result.clone(),
                    failed,
                })
            })
            .collect::<Result<Vec<_>, Failure>>()?;
        let (mut files, output) = map_io::result_files(
            &plan,
            &arns,
            &children,
            &iso_ms(v.frame.entered_ms),
            &iso_ms(self.now),
        );
        if files.is_empty() {
            return Ok(false);
        }
        let (key, body) = files.remove(0);
        let parameters = json!({"Bucket": plan.bucket, "Key": key, "Body": body});
        let step = MapIoStep::Write {
            bucket: plan.bucket,
            files,
            output,
        };
        self.map_io_call(id, PUT_OBJECT.to_string(), parameters, step);
        Ok(true)
    }
}

fn writer_error(cause: &str) -> Failure {
    map_io::writer_failed(cause)
}

impl Step<'_> {
    /// The map run ARNs of the Distributed Map at frame `id` (a new run id when `run` is
    /// `None`); `None` for an inline Map.
    pub(super) fn map_run_arns_for(
        &mut self,
        id: FrameId,
        run: Option<&str>,
    ) -> Option<MapRunArns> {
        let node = self.node_of(id)?;
        if !is_distributed(&node.state) {
            return None;
        }
        let label = label(&node.state).unwrap_or(&node.name).to_string();
        let run = match run {
            Some(r) => r.to_string(),
            None => map_io::uuid_of(&self.env.secret()),
        };
        Some(MapRunArns::new(
            &self.exec.meta.state_machine_arn,
            &label,
            &run,
        ))
    }

    /// A Distributed Map's run ended (with `failure`, or succeeded).
    pub(super) fn map_run_ended(&mut self, id: FrameId, fan: &Fanout, failure: Option<&Failure>) {
        if fan.map_run.is_none() {
            return;
        }
        let event = match failure {
            None => Event::MapRunSucceeded,
            Some(f) => Event::MapRunFailed {
                error: Some(f.error.clone()),
                cause: Some(f.cause.clone()),
            },
        };
        self.emit(id, event);
    }
}

/// A Map's `Label`.
fn label(state: &wfm_asl::State) -> Option<&str> {
    match state {
        wfm_asl::State::Map(s) => s.label.as_deref(),
        _ => None,
    }
}

/// Whether a Map state runs in distributed mode (its children are a map run).
pub fn is_distributed(state: &wfm_asl::State) -> bool {
    match state {
        wfm_asl::State::Map(s) => {
            s.processor()
                .and_then(|p| p.processor_config.as_ref())
                .and_then(|c| c.get("Mode"))
                .and_then(Value::as_str)
                == Some("DISTRIBUTED")
        }
        _ => false,
    }
}
