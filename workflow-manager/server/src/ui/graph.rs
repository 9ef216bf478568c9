//! A state machine drawn as SVG, as the Step Functions console draws it: states in layers
//! from `StartAt` down (breadth first along Next, Default, Choices and Catch), arrows for
//! transitions, each state coloured by the status of its latest job. Parallel and Map states
//! are drawn as one node (their branches are inside them). SVG elements are always closed
//! (`<rect ...></rect>`): inside HTML, an unclosed `<path>` would swallow what follows it.

use std::collections::{BTreeMap, HashMap, VecDeque};

use maud::{html, Markup};
use serde_json::Value;

const NODE_W: i64 = 150;
const NODE_H: i64 = 34;
const GAP_X: i64 = 24;
const GAP_Y: i64 = 44;

/// The transitions out of a state (Next, Default, each Choice's and Catcher's Next).
fn targets(state: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |v: &Value| {
        if let Some(s) = v.as_str() {
            if !out.iter().any(|o| o == s) {
                out.push(s.to_string());
            }
        }
    };
    push(&state["Next"]);
    for choice in state["Choices"].as_array().into_iter().flatten() {
        push(&choice["Next"]);
    }
    push(&state["Default"]);
    for catcher in state["Catch"].as_array().into_iter().flatten() {
        push(&catcher["Next"]);
    }
    out
}

/// The colour class of a status, as the badges use.
fn class_of(status: Option<&str>) -> String {
    match status {
        Some(s) => format!("s-{s}"),
        None => "s-none".into(),
    }
}

/// Draws `machine` (the ASL as JSON); `statuses` gives the latest job status per state name.
pub fn draw(machine: &Value, statuses: &HashMap<String, String>) -> Markup {
    let Some(states) = machine["States"].as_object() else {
        return html! { p.muted { "No states." } };
    };
    let start = machine["StartAt"].as_str().unwrap_or("");
    // Layers, breadth first from StartAt; states not reachable go in a last layer.
    let mut layer_of: HashMap<&str, usize> = HashMap::new();
    let mut queue = VecDeque::new();
    if states.contains_key(start) {
        layer_of.insert(start, 0);
        queue.push_back(start);
    }
    while let Some(name) = queue.pop_front() {
        let depth = layer_of[name];
        for t in targets(&states[name]) {
            if let Some((key, _)) = states.get_key_value(t.as_str()) {
                if !layer_of.contains_key(key.as_str()) {
                    layer_of.insert(key.as_str(), depth + 1);
                    queue.push_back(key.as_str());
                }
            }
        }
    }
    let deepest = layer_of.values().copied().max().map(|d| d + 1).unwrap_or(0);
    let mut layers: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
    for name in states.keys() {
        let layer = layer_of.get(name.as_str()).copied().unwrap_or(deepest);
        layers.entry(layer).or_default().push(name.as_str());
    }
    let widest = layers.values().map(Vec::len).max().unwrap_or(1) as i64;
    let width = widest * (NODE_W + GAP_X) + GAP_X;
    let height = layers.len() as i64 * (NODE_H + GAP_Y) + GAP_Y;
    let mut position: HashMap<&str, (i64, i64)> = HashMap::new();
    for (row, (_, names)) in layers.iter().enumerate() {
        let row_width = names.len() as i64 * (NODE_W + GAP_X) - GAP_X;
        let left = (width - row_width) / 2;
        for (i, name) in names.iter().enumerate() {
            let x = left + i as i64 * (NODE_W + GAP_X);
            let y = GAP_Y / 2 + row as i64 * (NODE_H + GAP_Y);
            position.insert(name, (x, y));
        }
    }
    let label = |name: &str| -> String {
        if name.chars().count() > 20 {
            format!("{}…", name.chars().take(19).collect::<String>())
        } else {
            name.to_string()
        }
    };
    html! {
        svg.graph xmlns="http://www.w3.org/2000/svg" viewBox={"0 0 " (width) " " (height)} width=(width) height=(height)
            role="img" aria-label="The state machine, each state coloured by its job status" {
            defs {
                marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse" {
                    path d="M 0 0 L 10 5 L 0 10 z" fill="#8a94a6" {}
                }
            }
            @for (name, state) in states {
                @for t in targets(state) {
                    @if let (Some((x1, y1)), Some((x2, y2))) = (position.get(name.as_str()), position.get(t.as_str())) {
                        @let (sx, sy) = (x1 + NODE_W / 2, y1 + NODE_H);
                        @let (ex, ey) = if y2 > y1 { (x2 + NODE_W / 2, *y2) } else { (x2 + NODE_W, y2 + NODE_H / 2) };
                        path.edge d={"M " (sx) " " (sy) " C " (sx) " " (sy + 24) ", " (ex) " " (ey - 24) ", " (ex) " " (ey)} marker-end="url(#arrow)" {}
                    }
                }
            }
            @for (name, state) in states {
                @if let Some((x, y)) = position.get(name.as_str()) {
                    @let status = statuses.get(name).map(String::as_str);
                    g class={"node badge-fill " (class_of(status))} {
                        title { (name) " (" (state["Type"].as_str().unwrap_or("?")) "): " (status.unwrap_or("not run")) }
                        rect x=(x) y=(y) width=(NODE_W) height=(NODE_H) rx="6" class=(class_of(status)) {}
                        text x=(x + NODE_W / 2) y=(y + NODE_H / 2 + 4) text-anchor="middle" { (label(name)) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_state_is_drawn_and_coloured_by_its_job() {
        let machine = json!({"StartAt": "A", "States": {
            "A": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsPresent": true, "Next": "B"}], "Default": "C"},
            "B": {"Type": "Task", "Resource": "r", "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "C"}], "End": true},
            "C": {"Type": "Fail"},
            "Orphan": {"Type": "Pass", "End": true}
        }});
        let statuses = HashMap::from([("B".to_string(), "failed".to_string())]);
        let svg = draw(&machine, &statuses).into_string();
        for name in ["A", "B", "C", "Orphan"] {
            assert!(
                svg.contains(&format!(">{name}</text>")),
                "{name} drawn: {svg}"
            );
        }
        assert!(svg.contains("class=\"s-failed\""), "B coloured failed");
        assert_eq!(
            svg.matches("<rect").count(),
            svg.matches("</rect>").count(),
            "closed"
        );
        assert_eq!(
            svg.matches("<path").count(),
            svg.matches("</path>").count(),
            "closed"
        );
        assert_eq!(
            svg.matches("class=\"edge\"").count(),
            3,
            "A→B, A→C, B→C (catch): {svg}"
        );
        let evil =
            json!({"StartAt": "<script>", "States": {"<script>": {"Type": "Pass", "End": true}}});
        assert!(
            !draw(&evil, &HashMap::new())
                .into_string()
                .contains("<script>"),
            "names are escaped"
        );
    }
}
