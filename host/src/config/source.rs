//! Reading a multi-document YAML file into values, each with a map from field path to the
//! line and column where the field is written.

use std::collections::HashMap;

use serde::Deserialize;
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::Marker;

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// How deeply collections may nest in a config. Istio's resources need about ten levels;
/// the bound keeps parsing and error reporting within a known stack and memory.
pub const MAX_DEPTH: usize = 100;

/// Where each field of one document is written: a tree of its nodes, found by field path.
/// Each node holds only its own key, so the cost is linear in the text, however deep.
#[derive(Debug, Clone, Default)]
pub struct Marks {
    start: Position,
    /// Where each node is written, if known; node 0 is the document itself.
    nodes: Vec<Option<Position>>,
    children: HashMap<(usize, Segment), usize>,
    /// The document is empty (or a bare null), and yields no value.
    empty: bool,
}

/// One step of a field path: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Segment {
    Key(Box<str>),
    Index(usize),
}

impl Marks {
    fn new(start: Position) -> Self {
        Self {
            start,
            nodes: vec![None],
            children: HashMap::new(),
            empty: true,
        }
    }

    /// The position of `path` (e.g. `spec.http[0].route`), or of its nearest written ancestor.
    pub fn locate(&self, path: &str) -> Position {
        let mut node = ROOT;
        let mut found = self.start;
        for segment in segments(path) {
            match self.children.get(&(node, segment)) {
                Some(&child) => node = child,
                None => break,
            }
            if let Some(position) = self.nodes[node] {
                found = position;
            }
        }
        found
    }

    /// The child of `parent` at `segment`, created if new.
    fn child(&mut self, parent: usize, segment: Segment) -> usize {
        let next = self.nodes.len();
        let child = *self.children.entry((parent, segment)).or_insert(next);
        if child == next {
            self.nodes.push(None);
        }
        child
    }

    /// A node outside the tree, for what no path can name (e.g. a mapping used as a key).
    fn detached(&mut self) -> usize {
        self.nodes.push(None);
        self.nodes.len() - 1
    }

    /// Records where `node` is written, unless it already is.
    fn mark(&mut self, node: usize, position: Position) {
        self.nodes[node].get_or_insert(position);
    }
}

const ROOT: usize = 0;

/// The steps of a field path as serde_path_to_error writes it: `a.b[0].c`.
fn segments(path: &str) -> impl Iterator<Item = Segment> + '_ {
    path.split('.')
        .filter(|part| !part.is_empty())
        .flat_map(|part| {
            let mut pieces = part.split('[');
            let key = pieces.next().filter(|key| !key.is_empty());
            let indices = pieces.map(|index| {
                let index = index.trim_end_matches(']');
                index
                    .parse()
                    .map_or_else(|_| Segment::Key(index.into()), Segment::Index)
            });
            key.map(|key| Segment::Key(key.into()))
                .into_iter()
                .chain(indices)
        })
}

/// One non-empty YAML document of the file.
#[derive(Debug, Clone)]
pub struct Document {
    /// The document's YAML.
    pub value: serde_yaml::Value,
    /// Where each of its fields is written.
    pub marks: Marks,
}

/// A YAML syntax error.
#[derive(Debug, Clone)]
pub struct SyntaxError {
    /// Where the problem is.
    pub position: Position,
    /// What the problem is.
    pub message: String,
}

impl SyntaxError {
    fn at(mark: Marker, message: impl Into<String>) -> Self {
        Self {
            position: Position {
                line: mark.line(),
                column: mark.col() + 1,
            },
            message: message.into(),
        }
    }
}

/// Parses every document of `text`; empty documents are skipped. Nesting deeper than
/// [`MAX_DEPTH`] is an error, found before any value is built.
pub fn parse(text: &str) -> Result<Vec<Document>, SyntaxError> {
    let mut recorder = MarkRecorder::default();
    let mut parser = Parser::new_from_str(text);
    loop {
        let (event, mark) = parser
            .next_token()
            .map_err(|e| SyntaxError::at(*e.marker(), e.info()))?;
        if event == Event::StreamEnd {
            break;
        }
        recorder.on_event(event, mark)?;
    }

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
    /// `key` is the node of the key just read, whose value comes next.
    Mapping {
        node: usize,
        key: Option<usize>,
    },
    Sequence {
        node: usize,
        index: usize,
    },
}

/// Builds [`Marks`] from the parser's events.
#[derive(Default)]
struct MarkRecorder {
    documents: Vec<Marks>,
    stack: Vec<Frame>,
}

impl MarkRecorder {
    fn on_event(&mut self, event: Event, mark: Marker) -> Result<(), SyntaxError> {
        match event {
            Event::DocumentStart => {
                self.stack.clear();
                self.documents.push(Marks::new(position(mark)));
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                if self.stack.len() >= MAX_DEPTH {
                    return Err(SyntaxError::at(
                        mark,
                        format!("collections nest deeper than {MAX_DEPTH} levels"),
                    ));
                }
                let is_mapping = matches!(event, Event::MappingStart(..));
                let node = match self.stack.last() {
                    None => {
                        self.set_root_empty(false);
                        ROOT
                    }
                    Some(_) => self.enter_node(mark, is_mapping),
                };
                self.stack.push(if is_mapping {
                    Frame::Mapping { node, key: None }
                } else {
                    Frame::Sequence { node, index: 0 }
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
        Ok(())
    }

    fn marks(&mut self) -> &mut Marks {
        if self.documents.is_empty() {
            self.documents.push(Marks::new(Position::default()));
        }
        self.documents.last_mut().expect("a document")
    }

    /// The node that starts now, recording its position; advances the parent.
    /// A mapping in a sequence is positioned at its first key instead (see `scalar`),
    /// since the parser marks a block mapping where its first value starts.
    fn enter_node(&mut self, mark: Marker, is_mapping: bool) -> usize {
        let (parent, index) = match self.stack.last_mut() {
            Some(Frame::Mapping { key, .. }) => match key.take() {
                Some(node) => return node,
                None => return self.marks().detached(),
            },
            Some(Frame::Sequence { node, index }) => {
                *index += 1;
                (*node, *index - 1)
            }
            None => return self.marks().detached(),
        };
        let item = self.marks().child(parent, Segment::Index(index));
        if !is_mapping {
            self.marks().mark(item, position(mark));
        }
        item
    }

    fn set_root_empty(&mut self, empty: bool) {
        self.marks().empty = empty;
    }

    /// Handles a scalar, which is either a mapping key or a value.
    fn scalar(&mut self, text: String, mark: Marker) {
        let Some(Frame::Mapping { node, key: None }) = self.stack.last() else {
            self.enter_node(mark, false);
            return;
        };
        let parent = *node;
        let marks = self.marks();
        let child = marks.child(parent, Segment::Key(text.into()));
        marks.mark(child, position(mark));
        if parent != ROOT {
            marks.mark(parent, position(mark));
        }
        if let Some(Frame::Mapping { key, .. }) = self.stack.last_mut() {
            *key = Some(child);
        }
    }
}

fn position(mark: Marker) -> Position {
    Position {
        line: mark.line(),
        column: mark.col() + 1,
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
