//! Where things are printed, and how: data on stdout, messages on stderr, tables aligned,
//! statuses coloured, colours only on a terminal (or when asked; `NO_COLOR` is honoured).

use std::io::IsTerminal;

use anstyle::{AnsiColor, Style};
use serde_json::Value;

use crate::args::ColorChoice;

/// The printer of one run.
pub struct Out {
    stdout_color: bool,
    stderr_color: bool,
    stdout_terminal: bool,
}

impl Out {
    /// A printer honouring `choice`.
    pub fn new(choice: ColorChoice) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let decide = |terminal: bool| match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => terminal && !no_color,
        };
        let stdout_terminal = std::io::stdout().is_terminal();
        Self {
            stdout_color: decide(stdout_terminal),
            stderr_color: decide(std::io::stderr().is_terminal()),
            stdout_terminal,
        }
    }

    /// Whether stdout is a terminal (live views redraw there).
    pub fn is_terminal(&self) -> bool {
        self.stdout_terminal
    }

    /// A line of data.
    pub fn data(&self, line: &str) {
        println!("{line}");
    }

    /// A message for the person at the terminal.
    pub fn message(&self, line: &str) {
        eprintln!("{line}");
    }

    /// An error.
    pub fn error(&self, message: &str) {
        let style = Style::new().fg_color(Some(AnsiColor::Red.into())).bold();
        eprintln!("{}: {message}", paint(self.stderr_color, style, "error"));
    }

    /// JSON, pretty.
    pub fn json(&self, value: &Value) {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
        );
    }

    /// `text` in `style` on stdout when colours are on.
    pub fn styled(&self, style: Style, text: &str) -> String {
        paint(self.stdout_color, style, text)
    }

    /// A status word, coloured by what it means.
    pub fn status(&self, status: &str) -> String {
        self.styled(status_style(status), status)
    }

    /// A bold header.
    pub fn bold(&self, text: &str) -> String {
        self.styled(Style::new().bold(), text)
    }

    /// Prints an aligned table; `status_column` is coloured as a status.
    pub fn table(&self, headers: &[&str], rows: &[Vec<String>], status_column: Option<usize>) {
        let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
        for row in rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(cell.chars().count());
                }
            }
        }
        let line = |cells: Vec<String>, raw: &[String]| {
            let mut text = String::new();
            for (i, (cell, raw)) in cells.iter().zip(raw).enumerate() {
                if i + 1 == cells.len() {
                    text.push_str(cell);
                } else {
                    let pad = widths[i].saturating_sub(raw.chars().count()) + 2;
                    text.push_str(cell);
                    text.push_str(&" ".repeat(pad));
                }
            }
            text.trim_end().to_string()
        };
        let raw_headers: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
        let styled_headers = raw_headers.iter().map(|h| self.bold(h)).collect();
        self.data(&line(styled_headers, &raw_headers));
        for row in rows {
            let styled = row
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if Some(i) == status_column {
                        self.status(c)
                    } else {
                        c.clone()
                    }
                })
                .collect();
            self.data(&line(styled, row));
        }
    }
}

fn paint(on: bool, style: Style, text: &str) -> String {
    if on {
        format!("{}{text}{}", style.render(), style.render_reset())
    } else {
        text.to_string()
    }
}

fn status_style(status: &str) -> Style {
    let color = match status {
        "succeeded" => AnsiColor::Green,
        "failed" | "aborted_deps_failed" => AnsiColor::Red,
        "running" => AnsiColor::Cyan,
        "queued" | "created" | "waiting_for_deps" => AnsiColor::Yellow,
        "cancelled" | "aborted_by_user" => AnsiColor::Magenta,
        _ => return Style::new(),
    };
    Style::new().fg_color(Some(color.into()))
}

/// A time for people: RFC 3339 to the second, in UTC.
pub fn time(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| "-".into())
}

/// A duration for people: 850ms, 12.3s, 4m05s.
pub fn duration(d: chrono::Duration) -> String {
    let ms = d.num_milliseconds().max(0);
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_only_when_on() {
        let on = Out {
            stdout_color: true,
            stderr_color: true,
            stdout_terminal: true,
        };
        let off = Out {
            stdout_color: false,
            stderr_color: false,
            stdout_terminal: false,
        };
        assert!(on.status("failed").contains("\u{1b}[31m"), "failed is red");
        assert!(
            on.status("succeeded").contains("\u{1b}[32m"),
            "succeeded is green"
        );
        assert_eq!(off.status("failed"), "failed");
        assert_eq!(duration(chrono::Duration::milliseconds(850)), "850ms");
        assert_eq!(duration(chrono::Duration::milliseconds(12_345)), "12.3s");
        assert_eq!(duration(chrono::Duration::seconds(245)), "4m05s");
    }
}
