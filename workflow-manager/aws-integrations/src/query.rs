//! The AWS query protocol (SNS): a request's JSON parameters as form fields, and an XML
//! answer as JSON, as the AWS SDK integrations of Step Functions give it (PascalCase names;
//! `member` lists as arrays; `entry` maps as objects).

use quick_xml::events::Event;
use quick_xml::Reader;
use serde_json::{Map, Value};

/// The form fields of an action: `Action`, `Version`, and the parameters flattened
/// (`A.B`, lists as `A.member.N`, `MessageAttributes` as `entry.N.Name` / `entry.N.Value.*`,
/// other maps named `Attributes` as `entry.N.key` / `entry.N.value`).
pub fn encode(action: &str, version: &str, parameters: &Value) -> Vec<(String, String)> {
    let mut out = vec![
        ("Action".to_string(), action.to_string()),
        ("Version".to_string(), version.to_string()),
    ];
    if let Value::Object(fields) = parameters {
        for (k, v) in fields {
            flatten(k, k, v, &mut out);
        }
    }
    out
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn flatten(name: &str, prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Null => {}
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let p = format!("{prefix}.member.{}", i + 1);
                flatten(name, &p, item, out);
            }
        }
        Value::Object(fields) if name == "MessageAttributes" && prefix == name => {
            for (i, (k, value)) in fields.iter().enumerate() {
                let p = format!("{prefix}.entry.{}", i + 1);
                out.push((format!("{p}.Name"), k.clone()));
                flatten("Value", &format!("{p}.Value"), value, out);
            }
        }
        Value::Object(fields) if name.ends_with("Attributes") && prefix == name => {
            for (i, (k, value)) in fields.iter().enumerate() {
                let p = format!("{prefix}.entry.{}", i + 1);
                out.push((format!("{p}.key"), k.clone()));
                out.push((format!("{p}.value"), scalar(value)));
            }
        }
        Value::Object(fields) => {
            for (k, value) in fields {
                flatten(k, &format!("{prefix}.{k}"), value, out);
            }
        }
        other => out.push((prefix.to_string(), scalar(other))),
    }
}

/// An XML element read into a tree.
#[derive(Debug, Default)]
pub(crate) struct Element {
    /// The local name.
    pub name: String,
    /// The text inside.
    pub text: String,
    /// The elements inside, in order.
    pub children: Vec<Element>,
}

impl Element {
    /// The text of the first child named `name`.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.children
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.text.as_str())
    }
}

/// Reads an XML document into a tree: its root element.
pub(crate) fn parse(xml: &[u8]) -> Result<Element, String> {
    let mut reader = Reader::from_reader(xml);
    reader.config_mut().trim_text(true);
    let mut stack = vec![Element::default()];
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => stack.push(Element {
                name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                ..Element::default()
            }),
            Ok(Event::Empty(e)) => {
                let el = Element {
                    name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    ..Element::default()
                };
                if let Some(top) = stack.last_mut() {
                    top.children.push(el);
                }
            }
            Ok(Event::Text(t)) => {
                let text = t.decode().map_err(|e| e.to_string()).and_then(|s| {
                    quick_xml::escape::unescape(&s)
                        .map(|u| u.into_owned())
                        .map_err(|e| e.to_string())
                })?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&text);
                }
            }
            Ok(Event::CData(t)) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Ok(Event::GeneralRef(r)) => {
                let name = String::from_utf8_lossy(&r).into_owned();
                let text = quick_xml::escape::unescape(&format!("&{name};"))
                    .map(|u| u.into_owned())
                    .map_err(|e| e.to_string())?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&text);
                }
            }
            Ok(Event::End(_)) => {
                let done = stack.pop().ok_or("unbalanced XML")?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => return Err("unbalanced XML".into()),
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(format!("invalid XML at {}: {e}", reader.buffer_position())),
        }
        buf.clear();
    }
    let mut root = stack.pop().ok_or("empty XML")?;
    root.children.pop().ok_or_else(|| "empty XML".to_string())
}

fn to_json(el: &Element) -> Value {
    if el.children.is_empty() {
        return Value::String(el.text.clone());
    }
    if el.children.iter().all(|c| c.name == "member") {
        return Value::Array(el.children.iter().map(to_json).collect());
    }
    if el.children.iter().all(|c| c.name == "entry") {
        let mut m = Map::new();
        for entry in &el.children {
            let key = entry
                .children
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case("key") || c.name == "Name")
                .map(|c| c.text.clone())
                .unwrap_or_default();
            let value = entry
                .children
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case("value"))
                .map(to_json)
                .unwrap_or(Value::Null);
            m.insert(key, value);
        }
        return Value::Object(m);
    }
    let mut m = Map::new();
    for c in &el.children {
        m.insert(c.name.clone(), to_json(c));
    }
    Value::Object(m)
}

/// An answer: the `<ActionResult>` element as JSON, and the request id.
pub fn decode_result(xml: &[u8]) -> Result<(Value, String), String> {
    let root = parse(xml)?;
    let request_id = root
        .children
        .iter()
        .find(|c| c.name == "ResponseMetadata")
        .and_then(|m| m.children.iter().find(|c| c.name == "RequestId"))
        .map(|r| r.text.clone())
        .unwrap_or_default();
    let result = root
        .children
        .iter()
        .find(|c| c.name.ends_with("Result"))
        .map(to_json)
        .unwrap_or_else(|| Value::Object(Map::new()));
    // An empty result element reads as an empty object, not as text.
    let result = match result {
        Value::String(s) if s.is_empty() => Value::Object(Map::new()),
        other => other,
    };
    Ok((result, request_id))
}

/// An error answer: code, message and request id.
pub fn decode_error(xml: &[u8]) -> Option<(String, String, String)> {
    let root = parse(xml).ok()?;
    let error = root.children.iter().find(|c| c.name == "Error")?;
    let field = |n: &str| {
        error
            .children
            .iter()
            .find(|c| c.name == n)
            .map(|c| c.text.clone())
            .unwrap_or_default()
    };
    let request_id = root
        .children
        .iter()
        .find(|c| c.name == "RequestId")
        .map(|c| c.text.clone())
        .unwrap_or_default();
    Some((field("Code"), field("Message"), request_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parameters_flatten_as_the_query_protocol_wants() {
        let form = encode(
            "Publish",
            "2010-03-31",
            &json!({"TopicArn": "arn:t", "Message": "hi",
                    "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}},
                    "Attributes": {"DisplayName": "x"},
                    "Tags": [{"Key": "a", "Value": "b"}]}),
        );
        let has = |k: &str, v: &str| form.iter().any(|(a, b)| a == k && b == v);
        assert!(has("Action", "Publish"));
        assert!(has("TopicArn", "arn:t"));
        assert!(has("MessageAttributes.entry.1.Name", "k"));
        assert!(has("MessageAttributes.entry.1.Value.DataType", "String"));
        assert!(has("MessageAttributes.entry.1.Value.StringValue", "v"));
        assert!(has("Attributes.entry.1.key", "DisplayName"));
        assert!(has("Attributes.entry.1.value", "x"));
        assert!(has("Tags.member.1.Key", "a"));
    }

    #[test]
    fn answers_read_as_json() {
        let xml = br#"<?xml version="1.0"?>
<ListTopicsResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
  <ListTopicsResult><Topics><member><TopicArn>arn:a</TopicArn></member>
  <member><TopicArn>arn:b&amp;c</TopicArn></member></Topics></ListTopicsResult>
  <ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata>
</ListTopicsResponse>"#;
        let (v, id) = decode_result(xml).expect("decoded");
        assert_eq!(
            v,
            json!({"Topics": [{"TopicArn": "arn:a"}, {"TopicArn": "arn:b&c"}]})
        );
        assert_eq!(id, "req-1");
        let err = br#"<ErrorResponse><Error><Type>Sender</Type><Code>NotFound</Code>
<Message>Topic does not exist</Message></Error><RequestId>r2</RequestId></ErrorResponse>"#;
        assert_eq!(
            decode_error(err),
            Some((
                "NotFound".into(),
                "Topic does not exist".into(),
                "r2".into()
            ))
        );
    }
}
