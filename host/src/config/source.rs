//! Reading a multi-document YAML file into values, each with a map from field path to the
//! line and column where the field is written.

use std::collections::HashMap;

use serde::Deserialize;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// Where each field path of one document is written.
#[derive(Debug, Clone, Default)]
pub struct Marks {
    start: Position,
    fields: HashMap<String, Position>,
    /// The document is empty (or a bare null), and yields no value.
    empty: bool,
}

impl Marks {
    /// The position of `path` (e.g. `spec.http[0].route`), or of its nearest written ancestor.
    pub fn locate(&self, path: &str) -> Position {
        let mut path = path;
        loop {
            if let Some(position) = self.fields.get(path) {
                return *position;
            }
            match path.rfind(['.', '[']) {
                Some(cut) => path = &path[..cut],
                None => return self.start,
            }
        }
    }
}

/// One non-empty YAML document of the file.
#[derive(Debug, Clone)]
pub struct Document {
    pub value: serde_yaml::Value,
    pub marks: Marks,
}

/// A YAML syntax error.
#[derive(Debug, Clone)]
pub struct SyntaxError {
    pub position: Position,
    pub message: String,
}

/// Parses every document of `text`; empty documents are skipped.
pub fn parse(text: &str) -> Result<Vec<Document>, SyntaxError> {
    let mut recorder = MarkRecorder::default();
    Parser::new_from_str(text)
        .load(&mut recorder, true)
        .map_err(|e| SyntaxError {
            position: Position {
                line: e.marker().line(),
                column: e.marker().col() + 1,
            },
            message: e.info().to_string(),
        })?;

    let mut documents = Vec::new();
    let mut marks = recorder.documents.into_iter().filter(|m| !m.empty);
    for de in serde_yaml::Deserializer::from_str(text) {
        let value = serde_yaml::Value::deserialize(de).map_err(|e| SyntaxError {
            position: e
                .location()
                .map(|l| Position {
                    line: l.line(),
                    column: l.column(),
                })
                .unwrap_or_default(),
            message: e.to_string(),
        })?;
        if !value.is_null() {
            let marks = marks.next().unwrap_or_default();
            documents.push(Document { value, marks });
        }
    }
    Ok(documents)
}

/// Where the recorder stands inside a collection.
enum Frame {
    Mapping { path: String, key: Option<String> },
    Sequence { path: String, index: usize },
}

/// Builds [`Marks`] from the parser's events.
#[derive(Default)]
struct MarkRecorder {
    documents: Vec<Marks>,
    stack: Vec<Frame>,
}

impl MarkRecorder {
    /// The path of the node that starts now, recording its position; advances the parent.
    /// A mapping in a sequence is positioned at its first key instead (see `scalar`),
    /// since the parser marks a block mapping where its first value starts.
    fn enter_node(&mut self, mark: Marker, is_mapping: bool) -> Option<String> {
        let position = Position {
            line: mark.line(),
            column: mark.col() + 1,
        };
        let path = match self.stack.last_mut()? {
            Frame::Mapping { path, key } => {
                let key = key.take()?;
                if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                }
            }
            Frame::Sequence { path, index } => {
                let item = format!("{path}[{index}]");
                *index += 1;
                if is_mapping {
                    return Some(item);
                }
                if let Some(marks) = self.documents.last_mut() {
                    marks.fields.entry(item.clone()).or_insert(position);
                }
                item
            }
        };
        Some(path)
    }

    fn set_root_empty(&mut self, empty: bool) {
        if let Some(marks) = self.documents.last_mut() {
            marks.empty = empty;
        }
    }

    /// Handles a scalar, which is either a mapping key or a value.
    fn scalar(&mut self, text: String, mark: Marker) {
        if let Some(Frame::Mapping { path, key }) = self.stack.last_mut()
            && key.is_none()
        {
            let field = if path.is_empty() {
                text.clone()
            } else {
                format!("{path}.{text}")
            };
            let position = Position {
                line: mark.line(),
                column: mark.col() + 1,
            };
            if let Some(marks) = self.documents.last_mut() {
                marks.fields.entry(field).or_insert(position);
                if !path.is_empty() {
                    marks.fields.entry(path.clone()).or_insert(position);
                }
            }
            *key = Some(text);
            return;
        }
        self.enter_node(mark, false);
    }
}

impl MarkedEventReceiver for MarkRecorder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        match event {
            Event::DocumentStart => {
                self.stack.clear();
                self.documents.push(Marks {
                    start: Position {
                        line: mark.line(),
                        column: mark.col() + 1,
                    },
                    fields: HashMap::new(),
                    empty: true,
                });
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let path = match self.stack.last() {
                    None => {
                        self.set_root_empty(false);
                        String::new()
                    }
                    Some(_) => self
                        .enter_node(mark, matches!(event, Event::MappingStart(..)))
                        .unwrap_or_else(|| "?".into()),
                };
                self.stack.push(match event {
                    Event::MappingStart(..) => Frame::Mapping { path, key: None },
                    _ => Frame::Sequence { path, index: 0 },
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::Scalar(text, ..) if self.stack.is_empty() => {
                self.set_root_empty(matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"));
            }
            Event::Scalar(text, ..) => self.scalar(text, mark),
            Event::Alias(_) => {
                self.enter_node(mark, false);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_nested_fields_and_falls_back_to_parents() {
        let text =
            "a: 1\n---\nkind: X\nspec:\n  http:\n  - route:\n    - destination:\n        host: h\n";
        let docs = parse(text).unwrap();
        assert_eq!(docs.len(), 2);
        let marks = &docs[1].marks;
        let at = |p| {
            let pos = marks.locate(p);
            (pos.line, pos.column)
        };
        assert_eq!(at("kind"), (3, 1));
        assert_eq!(at("spec.http[0]"), (6, 5));
        assert_eq!(at("spec.http[0].route[0].destination.host"), (8, 9));
        assert_eq!(at("spec.http[0].route[0].destination.subset"), (7, 7));
    }

    #[test]
    fn skips_empty_documents() {
        let docs = parse("---\n---\nkind: A\n---\n").unwrap();
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].marks.locate("kind").line, 3);
    }

    #[test]
    fn reports_syntax_errors_with_position() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.position.line >= 1, "{err:?}");
    }
}
